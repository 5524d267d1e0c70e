package etcdsd

import (
	"context"
	"fmt"
	"testing"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/rewrite"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/testserver"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// startServer runs a CoreDNS instance with the given server block body on a free port and
// returns its address; the instance shuts down, callbacks included, when the test ends.
func startServer(t *testing.T, body string) string {
	t.Helper()
	inst, ports := testserver.Start(t, 1, func(p []int) string {
		return fmt.Sprintf(".:%d {\n bind 127.0.0.1\n%s\n}\n", p[0], body)
	})
	t.Cleanup(func() { testserver.Stop(inst) })
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}

// putMany writes n keys below dir, each with its own IPv4 address, in transactions.
func putMany(t *testing.T, dir string, n int) {
	t.Helper()
	var ops []clientv3.Op
	for i := range n {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/i%04d", dir, i), fmt.Sprintf(`{"host":"10.30.%d.%d"}`, i/256, i%256)))
	}
	if err := devetcd.Commit(context.Background(), testEtcd.Client(), ops); err != nil {
		t.Fatal(err)
	}
}

// A lookup cut at max_answers is a partial answer, and says so with TC (RFC 2181 section
// 9); the default cut is past what a 64 KiB message holds, so an answer that fits comes
// whole.
func TestLargeAnswers(t *testing.T) {
	putMany(t, "/big/local/example/many", 300)
	putMany(t, "/big/org/example/g", 1100)
	addr := startServer(t, fmt.Sprintf(" etcdsd example.local {\n  path /big\n  endpoint %[1]s\n  max_answers 200\n }\n etcdsd example.org {\n  path /big\n  endpoint %[1]s\n }", testEtcd.Server().Endpoint))

	ask := func(name, net string, bufsize uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		if bufsize > 0 {
			m.SetEdns0(bufsize, false)
		}
		r, _, err := (&dns.Client{Net: net}).Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name, net string
		bufsize   uint16
		answers   int // -1: some, fewer than whole
		whole     int // the records of the lookup
		tc        bool
	}{
		// 1,100 records take 32 KB: over TCP all of them, with the default cut.
		{"g.example.org.", "tcp", 0, 1100, 1100, false},
		// Over UDP, what fits the client's buffer, with TC.
		{"g.example.org.", "udp", 4096, -1, 1100, true},
		// Cut at 200 of 300 keys: the 200 with TC, over any transport.
		{"many.example.local.", "tcp", 0, 200, 200, true},
		{"many.example.local.", "udp", 0, -1, 200, true},
		{"many.example.local.", "udp", 65000, 200, 200, true},
	} {
		capped := testutil.ToFloat64(cappedTotal)
		r := ask(tc.name, tc.net, tc.bufsize)
		got := len(r.Answer)
		if tc.answers >= 0 && got != tc.answers || tc.answers < 0 && (got == 0 || got >= tc.whole) || r.Truncated != tc.tc {
			t.Errorf("%s over %s (bufsize %d): want %d records, tc=%v; got %d, tc=%v", tc.name, tc.net, tc.bufsize, tc.answers, tc.tc, got, r.Truncated)
		}
		// The lookup is counted when it is made; the prepared answer serves the repeats.
		if counted := testutil.ToFloat64(cappedTotal) > capped; counted != (tc.name == "many.example.local." && tc.net == "tcp") {
			t.Errorf("%s over %s: capped_lookups_total counted %v", tc.name, tc.net, counted)
		}
	}
}

func TestStartsWithEtcdUnreachable(t *testing.T) {
	// Nothing listens on this port: CoreDNS still starts, opens its port, and answers
	// SERVFAIL (never NXDOMAIN) while the plugin keeps trying.
	dead := devetcd.FreePortFor(t)
	addr := startServer(t, fmt.Sprintf(" etcdsd example.local {\n  endpoint http://127.0.0.1:%d\n  credentials dns pw\n }", dead))
	r, err := dns.Exchange(new(dns.Msg).SetQuestion("x.example.local.", dns.TypeA), addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("want SERVFAIL without etcd, got %s", dns.RcodeToString[r.Rcode])
	}
}

// Prepared answers share their records between responses, as the file plugin shares its
// zone's: the plugins that change responses (rewrite, cache, loadbalance) in front of
// etcdsd must not change what the next query gets.
func TestPreparedAnswersUnderResponsePlugins(t *testing.T) {
	for i, ip := range []string{"10.81.0.1", "10.81.0.2", "10.81.0.3"} {
		if _, err := testEtcd.Client().Put(context.Background(), fmt.Sprintf("/pa/local/example/_tcp/_web/w%d", i), fmt.Sprintf(`{"host":%q,"port":80}`, ip)); err != nil {
			t.Fatal(err)
		}
	}
	addr := startServer(t, fmt.Sprintf(` rewrite name regex (.*)\.alias\.local\. {1}.example.local. answer auto
 loadbalance
 cache 30
 etcdsd example.local {
  path /pa
  endpoint %s
 }`, testEtcd.Server().Endpoint))
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, qtype), addr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	owners := func(r *dns.Msg) map[string]int {
		n := map[string]int{}
		for _, rr := range append(r.Answer, r.Extra...) {
			n[rr.Header().Name]++
		}
		return n
	}
	for range 5 {
		for _, name := range []string{"_web._tcp.alias.local.", "_web._tcp.example.local."} {
			for _, qtype := range []uint16{dns.TypeSRV, dns.TypeA} {
				r := ask(name, qtype)
				if len(r.Answer) != 3 {
					t.Fatalf("%s %s: %d answers, want 3:\n%v", name, dns.TypeToString[qtype], len(r.Answer), r)
				}
				if n := owners(r)[name]; n != 3 {
					t.Fatalf("%s %s: %d records owned by the question's name, want 3:\n%v", name, dns.TypeToString[qtype], n, r)
				}
			}
		}
	}
}
