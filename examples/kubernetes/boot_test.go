package kubernetes_test

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/coredns/coredns/plugin/bind" // the plugins the etcdsd block runs with here
	_ "github.com/coredns/coredns/plugin/errors"
	"github.com/coredns/coredns/plugin/etcd/msg"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/etcdsd/etcdsd"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/testserver"
	"github.com/etcdsd/etcdsd/internal/wait"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// TestEtcdsdServerBlockBoots runs the ConfigMap's etcdsd server block in-process against a
// real etcd that requires the client certificate, with the Secret's keys laid out as the
// kubelet mounts them. The `.:53` block is left out: its kubernetes plugin needs a cluster.
//
// It checks the answers for the README's records, then cuts the network to etcd: etcdsd
// answers from its last copy until max_stale has passed, then SERVFAILs. Liveness stays 200
// throughout; readiness goes to 503 only when ready monitors continuously, because CoreDNS's
// ready by default stops asking a plugin once it has been ready.
func TestEtcdsdServerBlockBoots(t *testing.T) {
	e := loadExample(t)
	sb, et := e.etcdsdBlock(t)
	zone := dns.Fqdn(splitKey(sb.Keys[0]).zone)
	_, mountPath := e.secretMount(t)

	dir := t.TempDir()
	tf, err := devetcd.WriteTLSFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devetcd.StartTLS(filepath.Join(dir, "etcd"), 0, tf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	loadSeedRecords(t, srv, msg.Path(zone, cmp.Or(first(et.option("path")), "/skydns")))

	// The Secret's volume as the kubelet lays it out: a file per key.
	secretDir := filepath.Join(dir, "etcd-tls")
	if err := os.Mkdir(secretDir, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{corev1.TLSCertKey: tf.ClientCert, corev1.TLSPrivateKeyKey: tf.ClientKey, "ca.crt": tf.CA}
	for key := range e.secret.Data {
		src, ok := files[key]
		if !ok {
			t.Fatalf("Secret key %s: no test file for it", key)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(secretDir, key), b, 0o400); err != nil {
			t.Fatal(err)
		}
	}

	readies := sb.plugins("ready")
	if len(readies) == 0 {
		t.Fatalf("block %v: no ready", sb.Keys)
	}
	configured, continuously := readies[0].Block, [][]string{{"monitor", "continuously"}}
	for _, tc := range []struct {
		name     string
		maxStale string     // instead of the configured one, if set
		ready    [][]string // the ready block
		rcode    int        // once etcd is away
	}{
		{"as configured", "", configured, dns.RcodeSuccess},
		{"past max_stale", "3s", configured, dns.RcodeServerFailure},
		{"past max_stale, ready monitor continuously", "3s", continuously, dns.RcodeServerFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := startProxy(t, strings.TrimPrefix(srv.Endpoint, "https://"))
			inst, ports := testserver.Start(t, 4, func(p []int) string {
				return localBlock(t, *sb, p, "https://"+proxy.addr(), mountPath, secretDir, tc.maxStale, tc.ready).String()
			})
			t.Cleanup(func() { testserver.Stop(inst) })
			dnsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
			readyURL := fmt.Sprintf("http://127.0.0.1:%d/ready", ports[1])
			healthURL := fmt.Sprintf("http://127.0.0.1:%d/health", ports[2])
			metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[3])

			wait.For(t, 20*time.Second, "ready 200", func() bool { return httpStatus(readyURL) == http.StatusOK })
			checkSeedAnswers(t, dnsAddr, zone)
			if s := httpStatus(healthURL); s != http.StatusOK {
				t.Errorf("health %d, want 200", s)
			}
			if body := httpBody(t, metricsURL); !strings.Contains(body, "coredns_etcdsd_keys{") {
				t.Error("the prometheus line of the block does not export coredns_etcdsd_keys")
			}

			proxy.cut()
			want := http.StatusOK
			if tc.rcode == dns.RcodeSuccess {
				// Longer than the second of silence after which etcdsd gives up on a watch.
				time.Sleep(2 * time.Second)
				checkSeedAnswers(t, dnsAddr, zone)
			} else {
				wait.For(t, 20*time.Second, "SERVFAIL past max_stale", func() bool {
					r, err := dns.Exchange(new(dns.Msg).SetQuestion("_web._tcp."+zone, dns.TypeSRV), dnsAddr)
					return err == nil && r.Rcode == dns.RcodeServerFailure
				})
				if slices.ContainsFunc(tc.ready, func(l []string) bool { return slices.Equal(l, continuously[0]) }) {
					want = http.StatusServiceUnavailable
				}
			}
			if s := httpStatus(readyURL); s != want {
				t.Errorf("etcd away: ready %d, want %d", s, want)
			}
			if s := httpStatus(healthURL); s != http.StatusOK {
				t.Errorf("etcd away: health %d, want 200", s)
			}
		})
	}
}

// localBlock makes the etcdsd server block run here: on loopback ports (DNS, ready, health,
// metrics), against the test's etcd through a proxy, with the Secret's files from secretDir
// instead of mountPath, and with maxStale, if set, for the configured max_stale: a short one
// shows its effect within the test.
func localBlock(t testserver.TB, sb serverBlock, ports []int, endpoint, mountPath, secretDir, maxStale string, ready [][]string) corefile {
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	out := serverBlock{Plugins: []plugin{{Name: "bind", Args: []string{"127.0.0.1"}}}}
	for _, k := range sb.Keys {
		out.Keys = append(out.Keys, splitKey(k).scheme+splitKey(k).zone+":"+strconv.Itoa(ports[0]))
	}
	for _, p := range sb.Plugins {
		switch p.Name {
		case "bind", "health":
			continue
		case "ready":
			p = plugin{Name: p.Name, Args: []string{addr(1)}, Block: ready}
		case "prometheus":
			p = plugin{Name: p.Name, Args: []string{addr(3)}}
		case "etcdsd":
			var opts [][]string
			for _, o := range p.Block {
				switch o[0] {
				case "endpoint":
					o = []string{"endpoint", endpoint}
				case "tls":
					o = slices.Clone(o)
					for i, f := range o[1:] {
						rest, ok := strings.CutPrefix(f, mountPath+"/")
						if !ok {
							t.Fatalf("etcdsd tls file %s is not in the Secret's volume %s", f, mountPath)
						}
						o[i+1] = filepath.Join(secretDir, rest)
					}
				case "max_stale":
					if maxStale != "" {
						continue
					}
				}
				opts = append(opts, o)
			}
			if maxStale != "" {
				opts = append(opts, []string{"max_stale", maxStale})
			}
			p = plugin{Name: p.Name, Args: p.Args, Block: opts}
		}
		out.Plugins = append(out.Plugins, p)
	}
	// health lives in the `.:53` block; without lameduck, which would hold up every shutdown.
	out.Plugins = append(out.Plugins, plugin{Name: "health", Args: []string{addr(2)}})
	return corefile{out}
}

// loadSeedRecords puts testdata/seed.records, the README's records for example.local, into
// etcd under prefix.
func loadSeedRecords(t *testing.T, srv *devetcd.Server, prefix string) {
	t.Helper()
	const seedPrefix = "/skydns/local/example/"
	cli, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rs, err := devetcd.ReadRecords("../../testdata/seed.records")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		rest, ok := strings.CutPrefix(r.Key, seedPrefix)
		if !ok {
			t.Fatalf("seed key %s is not under %s", r.Key, seedPrefix)
		}
		if _, err := cli.Put(t.Context(), prefix+"/"+rest, r.Value); err != nil {
			t.Fatal(err)
		}
	}
}

// checkSeedAnswers asks for the web servers of the seed records, as the README's walk-through
// does.
func checkSeedAnswers(t *testing.T, addr, zone string) {
	t.Helper()
	r, err := dns.Exchange(new(dns.Msg).SetQuestion("_web._tcp."+zone, dns.TypeSRV), addr)
	if err != nil {
		t.Fatal(err)
	}
	var answer, extra, wantAnswer, wantExtra []string
	for _, rr := range r.Answer {
		answer = append(answer, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	for _, rr := range r.Extra {
		extra = append(extra, rr.Header().Name+" "+strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("web-server0%d._web._tcp.%s", i, zone)
		wantAnswer = append(wantAnswer, "10 33 80 "+host)
		wantExtra = append(wantExtra, fmt.Sprintf("%s 1.1.1.%d", host, i))
	}
	slices.Sort(answer)
	slices.Sort(extra)
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || !slices.Equal(answer, wantAnswer) || !slices.Equal(extra, wantExtra) {
		t.Errorf("SRV _web._tcp.%s: %s aa=%v answer %q extra %q, want NOERROR aa answer %q extra %q",
			zone, dns.RcodeToString[r.Rcode], r.Authoritative, answer, extra, wantAnswer, wantExtra)
	}
}

// proxy forwards TCP connections to an address until cut, then refuses them: etcd as seen
// across a broken network, while etcd itself keeps running.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// httpStatus returns the status of a GET, or 0 if there is no answer.
func httpStatus(u string) int {
	resp, err := httpClient.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func httpBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := httpClient.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
