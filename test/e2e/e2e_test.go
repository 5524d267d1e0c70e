// Package e2e runs the cmd/coredns binary with the repository's Corefile against a real
// etcd loaded with the README's records, and asks it over the network.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcdsd/etcdsd/internal/devetcd"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// corednsBinary returns $ETCDSD_COREDNS, or builds cmd/coredns into a temporary folder.
func corednsBinary(t *testing.T) string { return binary(t, "ETCDSD_COREDNS", "coredns") }

// binary returns the file $env names, or builds ../../cmd/name into a temporary folder.
func binary(t *testing.T, env, name string) string {
	t.Helper()
	if bin := os.Getenv(env); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "cmd", name) // cmd/coredns is a module of its own
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("building cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

type stack struct {
	etcd        *devetcd.Server
	dnsAddr     string // etcdsd
	builtinAddr string // the built-in etcd plugin, same data
	metricsAddr string // the prometheus plugin
	coredns     *os.Process
}

// startStack starts etcd with the seed records and CoreDNS with the repository Corefile,
// and waits until the ready plugin reports ready.
func startStack(t *testing.T) *stack { t.Helper(); return startStackConf(t, "../../Corefile") }

// startStackConf is startStack with the Corefile conf, which gets the repository
// Corefile's environment: DNS_PORT, BUILTIN_DNS_PORT, ETCD_ENDPOINT, READY_PORT and
// METRICS_PORT.
func startStackConf(t *testing.T, conf string) *stack {
	t.Helper()
	bin := corednsBinary(t)
	etcd, err := devetcd.Start(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	cli, err := etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := devetcd.LoadRecords(context.Background(), cli, "../../testdata/seed.records"); err != nil {
		t.Fatal(err)
	}

	// A port found free can be taken before CoreDNS binds it; then CoreDNS exits and
	// gets another try with new ports.
	for range 3 {
		dnsPort, builtinPort, readyPort, metricsPort := devetcd.FreePortFor(t), devetcd.FreePortFor(t), devetcd.FreePortFor(t), devetcd.FreePortFor(t)
		if p := startCoreDNS(t, bin, conf, etcd.Endpoint, dnsPort, builtinPort, readyPort, metricsPort); p != nil {
			return &stack{
				etcd:        etcd,
				dnsAddr:     fmt.Sprintf("127.0.0.1:%d", dnsPort),
				builtinAddr: fmt.Sprintf("127.0.0.1:%d", builtinPort),
				metricsAddr: fmt.Sprintf("127.0.0.1:%d", metricsPort),
				coredns:     p,
			}
		}
	}
	t.Fatal("coredns did not start")
	return nil
}

// startCoreDNS runs the binary on the Corefile conf and waits until the ready plugin
// reports ready; nil if CoreDNS exited first.
func startCoreDNS(t *testing.T, bin, conf, endpoint string, dnsPort, builtinPort, readyPort, metricsPort int) *os.Process {
	t.Helper()
	cmd := exec.Command(bin, "-conf", conf)
	cmd.Env = append(os.Environ(),
		"DNS_PORT="+strconv.Itoa(dnsPort),
		"BUILTIN_DNS_PORT="+strconv.Itoa(builtinPort),
		"ETCD_ENDPOINT="+endpoint,
		"READY_PORT="+strconv.Itoa(readyPort),
		"METRICS_PORT="+strconv.Itoa(metricsPort),
	)
	if !startUntilReady(t, cmd, "coredns", fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort)) {
		return nil
	}
	return cmd.Process
}

// startUntilReady starts cmd, a server called name, and waits until readyURL answers 200
// OK; false if it exited first. It is killed when the test ends, and its output logged
// then if the test failed.
func startUntilReady(t *testing.T, cmd *exec.Cmd, name, readyURL string) bool {
	t.Helper()
	logs := &devetcd.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Logf("%s exited while starting:\n%s", name, logs.String())
			return false
		default:
		}
		resp, err := http.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s:\n%s", name, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client returns a client of the stack's etcd, closed when the test ends.
func (s *stack) client(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := s.etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// ask sends one query over UDP and returns the answer and additional sections as strings.
func (s *stack) ask(t *testing.T, name string, qtype uint16) (answer, extra []string) {
	t.Helper()
	return askAt(t, s.dnsAddr, name, qtype)
}

// waitAnswer asks for name until the answer is want; the bound only ends a hung test.
func (s *stack) waitAnswer(t *testing.T, after, name string, qtype uint16, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		answer, _ := s.ask(t, name, qtype)
		if slices.Equal(answer, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: answer %q, want %q", after, answer, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func askAt(t *testing.T, addr, name string, qtype uint16) (answer, extra []string) {
	t.Helper()
	m, err := dns.Exchange(new(dns.Msg).SetQuestion(name, qtype), addr)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	for _, rr := range m.Answer {
		answer = append(answer, rdata(rr))
	}
	for _, rr := range m.Extra {
		extra = append(extra, rr.Header().Name+" "+rdata(rr))
	}
	slices.Sort(answer)
	slices.Sort(extra)
	return answer, extra
}

// rdata is what `dig +short` prints for rr.
func rdata(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

func TestQueriesReadNothingFromEtcd(t *testing.T) {
	s := startStack(t)
	burst := func(addr string) float64 {
		before := s.rangeTotal(t)
		for i := range 1000 {
			name := []string{"_web._tcp.example.local.", "_app._tcp.example.local.", "nothere.example.local."}[i%3]
			askAt(t, addr, name, []uint16{dns.TypeSRV, dns.TypeA}[i%2])
		}
		return s.rangeTotal(t) - before
	}
	if n := burst(s.dnsAddr); n != 0 {
		t.Errorf("1000 queries to etcdsd caused %v etcd range requests, want 0", n)
	}
	// The same burst through the built-in plugin shows that the counter counts.
	n := burst(s.builtinAddr)
	if n < 1000 {
		t.Errorf("1000 queries to the built-in etcd plugin caused %v range requests, want at least 1000", n)
	}
	t.Logf("range requests per 1000 queries: etcdsd 0, built-in etcd %v", n)
}

// rangeTotal reads etcd's count of range requests from its metrics endpoint.
func (s *stack) rangeTotal(t *testing.T) float64 {
	t.Helper()
	m, err := devetcd.Scrape(s.etcd.Endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m["etcd_mvcc_range_total"]; !ok {
		t.Fatal("etcd_mvcc_range_total not found")
	}
	return devetcd.Sum(m, "etcd_mvcc_range_total", nil)
}

func TestChangesReachDNS(t *testing.T) {
	s := startStack(t)
	cli := s.client(t)
	ctx := context.Background()

	key := "/skydns/local/example/_tcp/_web/web-server04"
	if _, err := cli.Put(ctx, key, `{"host":"1.1.1.4","port":80}`); err != nil {
		t.Fatal(err)
	}
	s.waitAnswer(t, "a put", "_web._tcp.example.local.", dns.TypeA, []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"})

	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	s.waitAnswer(t, "a delete", "_web._tcp.example.local.", dns.TypeA, []string{"1.1.1.1", "1.1.1.2", "1.1.1.3"})

	lease, err := cli.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, key, `{"host":"1.1.1.4","port":80}`, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	s.waitAnswer(t, "a leased put", "_web._tcp.example.local.", dns.TypeA, []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"})
	s.waitAnswer(t, "the lease's expiry", "_web._tcp.example.local.", dns.TypeA, []string{"1.1.1.1", "1.1.1.2", "1.1.1.3"})
}

// The plugin's metrics, scraped from the prometheus plugin of the running binary, are all
// there and pass promlint.
func TestMetricsScrape(t *testing.T) {
	s := startStack(t)
	cli := s.client(t)
	ctx := context.Background()
	if _, err := cli.Put(ctx, "/skydns/local/example/new/i1", `{"host":"10.9.9.1"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/skydns/local/example/new/bad", `{"host":`); err != nil {
		t.Fatal(err)
	}
	body := s.scrape(t, []string{
		"coredns_etcdsd_keys", "coredns_etcdsd_revision", "coredns_etcdsd_fresh_timestamp_seconds",
		"coredns_etcdsd_stale", "coredns_etcdsd_watch_events_total", "coredns_etcdsd_lists_total",
		"coredns_etcdsd_list_duration_seconds", "coredns_etcdsd_last_list_timestamp_seconds",
		"coredns_etcdsd_skipped_values_total", "coredns_etcdsd_capped_lookups_total",
		"coredns_etcdsd_divergences_total", "coredns_etcdsd_verify_duration_seconds",
	})
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "coredns_etcdsd_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

// scrape reads the metrics of the running binary until every metric in want is there.
func (s *stack) scrape(t *testing.T, want []string) []byte {
	t.Helper()
	var body []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + s.metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(m string) bool { return strings.Contains(string(body), "\n# TYPE "+m+" ") })
		if len(missing) == 0 {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics missing from the scrape: %v", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Every expression of the Grafana dashboard in examples/grafana names metrics that the
// running binary exports, and the dashboard shows every coredns_etcdsd_* metric.
func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile(*dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title, Type string
			Targets     []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Definition string }
		}
	}
	if err := json.Unmarshal(b, &dashboard); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			exprs = append(exprs, target.Expr)
			// Over the dashboard's whole range, every point of a time series is the same
			// window moved along: a total that belongs in a stat panel.
			if p.Type == "timeseries" && strings.Contains(target.Expr, "$__range") {
				t.Errorf("panel %q plots a window of the dashboard's whole range as a time series: %s", p.Title, target.Expr)
			}
		}
	}
	for _, v := range dashboard.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	metric := regexp.MustCompile(`\bcoredns_[a-z0-9_]+`)
	named := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metric.FindAllString(e, -1) {
			named[m] = true
		}
	}
	if len(named) == 0 {
		t.Fatal("the dashboard names no metric")
	}

	s := startStack(t)
	if _, err := s.client(t).Put(context.Background(), "/skydns/local/example/new/bad", `{"host":`); err != nil {
		t.Fatal(err)
	}
	s.ask(t, "_web._tcp.example.local.", dns.TypeSRV) // CoreDNS's request metrics start with a request
	s.scrape(t, []string{"coredns_dns_requests_total", "coredns_etcdsd_skipped_values_total", "coredns_etcdsd_verify_duration_seconds"})
	families, err := devetcd.Scrape("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for m := range named {
		base := m
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := families[strings.TrimSuffix(m, suffix)]; ok && strings.HasSuffix(m, suffix) && f.GetType() == dto.MetricType_HISTOGRAM {
				base = strings.TrimSuffix(m, suffix)
			}
		}
		if _, ok := families[base]; !ok {
			t.Errorf("the dashboard names %s, which the running binary does not export", m)
		}
	}
	for name := range families {
		if !strings.HasPrefix(name, "coredns_etcdsd_") {
			continue
		}
		shown := false
		for m := range named {
			shown = shown || m == name || strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count") == name
		}
		if !shown {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
}
