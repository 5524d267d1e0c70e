package etcdsd

import (
	"context"
	"fmt"
	"testing"

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

func TestLargeAnswers(t *testing.T) {
	var ops []clientv3.Op
	for i := range 300 {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("/big/local/example/many/i%03d", i), fmt.Sprintf(`{"host":"10.30.%d.%d"}`, i/256, i%256)))
	}
	for len(ops) > 0 {
		n := min(len(ops), 100)
		if _, err := testClient.Txn(context.Background()).Then(ops[:n]...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[n:]
	}
	addr := startServer(t, fmt.Sprintf(" etcdsd example.local {\n  path /big\n  endpoint %s\n  max_answers 200\n }", testEtcd.Endpoint))
	capped := testutil.ToFloat64(cappedTotal)

	ask := func(net string, bufsize uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg).SetQuestion("many.example.local.", dns.TypeA)
		if bufsize > 0 {
			m.SetEdns0(bufsize, false)
		}
		r, _, err := (&dns.Client{Net: net}).Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Over TCP the whole answer, which the cap holds to 200 of the 300 keys.
	if r := ask("tcp", 0); r.Truncated || len(r.Answer) != 200 {
		t.Errorf("TCP: want 200 records without TC, got %d, tc=%v", len(r.Answer), r.Truncated)
	}
	if got := testutil.ToFloat64(cappedTotal); got <= capped {
		t.Error("capped_lookups_total did not count the capped lookup")
	}
	// Over UDP, what fits the client's buffer, with TC set when that is not all.
	if r := ask("udp", 0); !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 200 {
		t.Errorf("UDP, 512 bytes: want a truncated part with TC, got %d records, tc=%v", len(r.Answer), r.Truncated)
	}
	if r := ask("udp", 4096); r.Truncated || len(r.Answer) != 200 {
		t.Errorf("UDP, EDNS 4096: want 200 records without TC, got %d, tc=%v", len(r.Answer), r.Truncated)
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
