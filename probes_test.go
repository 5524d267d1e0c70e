package etcdsd

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/ready"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/testserver"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The probes through the real ready and health endpoints of a running CoreDNS, over an
// etcd that starts late, stops and comes back. ready (monitoring continuously) follows
// the index: 503 until the first complete read and while max_stale is exceeded. health
// stays 200 throughout: restarting CoreDNS because etcd is away would only throw away the
// last good copy it answers from.
func TestProbes(t *testing.T) {
	dir := t.TempDir()
	etcdPort := devetcd.FreePortFor(t)
	inst, ports := testserver.Start(t, 3, func(p []int) string {
		return fmt.Sprintf(`example.local:%d {
 bind 127.0.0.1
 etcdsd {
  endpoint http://127.0.0.1:%d
  max_stale 3s
 }
 ready 127.0.0.1:%d {
  monitor continuously
 }
 health 127.0.0.1:%d
}`, p[0], etcdPort, p[1], p[2])
	})
	defer testserver.Stop(inst)
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", ports[1])
	health := fmt.Sprintf("http://127.0.0.1:%d/health", ports[2])

	status := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// waitStatus polls url until it answers want; the bound only ends a hung test.
	waitStatus := func(url string, want int, when string) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); status(url) != want; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: %s never answered %d", when, url, want)
			}
		}
	}
	probes := func(wantReady int, when string) {
		t.Helper()
		if got := status(ready); got != wantReady {
			t.Errorf("%s: ready %d, want %d", when, got, wantReady)
		}
		if got := status(health); got != http.StatusOK {
			t.Errorf("%s: health %d, want 200", when, got)
		}
	}
	rcode := func() int {
		r, err := dns.Exchange(new(dns.Msg).SetQuestion("web.example.local.", dns.TypeA), dnsAddr)
		if err != nil {
			t.Fatal(err)
		}
		return r.Rcode
	}

	probes(http.StatusServiceUnavailable, "before etcd is up")

	srv, err := devetcd.Start(dir, etcdPort)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), "/skydns/local/example/web", `{"host":"10.5.0.1"}`); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	waitStatus(ready, http.StatusOK, "after etcd started")
	probes(http.StatusOK, "with etcd up")
	// Ready says the first list is in, not that the put after it is: wait for the put,
	// so that what follows asks about a record the index held before etcd went.
	for end := time.Now().Add(10 * time.Second); rcode() != dns.RcodeSuccess; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the index never held web.example.local: %s", indexState(inst))
		}
	}

	// A quiet watch of a healthy etcd is heard from often enough for the least max_stale.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if rc := rcode(); rc != dns.RcodeSuccess {
			t.Fatalf("etcd up and quiet: rcode %s, want NOERROR: %s", dns.RcodeToString[rc], indexState(inst))
		}
	}

	srv.Close()
	waitStatus(ready, http.StatusServiceUnavailable, "etcd away past max_stale")
	probes(http.StatusServiceUnavailable, "etcd away past max_stale")
	if rc := rcode(); rc != dns.RcodeServerFailure {
		t.Errorf("past max_stale: rcode %s, want SERVFAIL", dns.RcodeToString[rc])
	}

	srv, err = devetcd.Start(dir, etcdPort)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	waitStatus(ready, http.StatusOK, "after etcd came back")
	probes(http.StatusOK, "after etcd came back")
	if rc := rcode(); rc != dns.RcodeSuccess {
		var keys []string
		if c, err := srv.Client(); err == nil {
			if resp, err := c.Get(t.Context(), "/", clientv3.WithPrefix(), clientv3.WithKeysOnly()); err == nil {
				keys = append(keys, fmt.Sprintf("revision %d", resp.Header.Revision))
				for _, kv := range resp.Kvs {
					keys = append(keys, string(kv.Key))
				}
			}
			c.Close()
		}
		t.Errorf("after etcd came back: rcode %s, want NOERROR; etcd holds %q; %s",
			dns.RcodeToString[rc], keys, indexState(inst))
	}
}

// stanzasOf returns the etcdsd stanzas of inst.
func stanzasOf(inst *caddy.Instance) []*Etcdsd {
	g, _ := inst.Storage[groupKey{}].(*group)
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.members)
}

// indexState describes the indexes of inst's etcdsd stanzas, for a failure message.
func indexState(inst *caddy.Instance) string {
	var out []string
	for _, e := range stanzasOf(inst) {
		for _, w := range e.watchers {
			s := w.snapshot()
			if s == nil {
				out = append(out, w.root+": no index")
				continue
			}
			spans, applied := s.Spans()
			out = append(out, fmt.Sprintf("%s at revision %d, %v applied to %v: %d keys", w.root, s.Rev(), spans, applied, s.Len()))
		}
	}
	return strings.Join(out, "; ")
}

// CoreDNS's ready plugin keeps one Readiness per plugin name for the whole server, so it
// asks only one of several etcdsd stanzas; that one must answer for all. One stanza here
// has no etcd, in every position it can take: /ready stays 503 until it is in.
func TestReadyCoversEveryStanza(t *testing.T) {
	dead := devetcd.FreePortFor(t)
	good := func(zone string) string {
		return fmt.Sprintf(" etcdsd %s {\n  endpoint %s\n }\n", zone, testEtcd.Server().Endpoint)
	}
	bad := fmt.Sprintf(" etcdsd b.local {\n  endpoint http://127.0.0.1:%d\n }\n", dead)
	for _, tc := range []struct {
		name   string
		blocks []string // server block bodies; a.local and b.local on one port, c.local on another
	}{
		{"one block, the dead stanza first", []string{bad + good("a.local")}},
		{"one block, the dead stanza last", []string{good("a.local") + bad}},
		{"two blocks, the dead one first", []string{bad, good("c.local")}},
		{"two blocks, the dead one last", []string{good("c.local"), bad}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, ports := testserver.Start(t, 3, func(p []int) string {
				var cf strings.Builder
				for i, body := range tc.blocks {
					zones := "a.local b.local"
					if strings.Contains(body, "c.local") {
						zones = "c.local"
					}
					fmt.Fprintf(&cf, "%s:%d {\n bind 127.0.0.1\n%s ready 127.0.0.1:%d\n}\n", zones, p[i], body, p[2])
				}
				return cf.String()
			})
			defer testserver.Stop(inst)
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", ports[2]))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("ready %d with one stanza unable to reach etcd, want 503", resp.StatusCode)
			}
		})
	}
}
