// Package faults runs etcdsd against a three-member etcd cluster of separate processes and
// breaks the cluster while a steady load of queries runs: a killed leader, frozen members
// (SIGSTOP), compaction and defragmentation, a storm of bad values, and the whole cluster
// down and back. Names whose data did not change must never fail.
package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	_ "github.com/etcdsd/etcdsd"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/testserver"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// load sends queries for names whose data does not change, and counts every failed or
// wrong answer.
type load struct {
	total, failed atomic.Int64
	mu            sync.Mutex
	firstFailures []string
	stop, done    chan struct{}
}

func startLoad(addr string, want map[string]string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	go func() {
		defer close(l.done)
		c := &dns.Client{Timeout: time.Second}
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			name := names[i%len(names)]
			r, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
			l.total.Add(1)
			var problem string
			switch {
			case err != nil:
				problem = err.Error()
			case r.Rcode != dns.RcodeSuccess:
				problem = dns.RcodeToString[r.Rcode]
			case len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want[name]:
				problem = fmt.Sprint(r.Answer)
			}
			if problem != "" {
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.firstFailures) < 10 {
					l.firstFailures = append(l.firstFailures, time.Now().Format("15:04:05.000")+" "+name+": "+problem)
				}
				l.mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return l
}

// With auth on, etcd 3.4 forgets its tokens when it restarts, and a client of a later
// release keeps sending the old one, even to get a new one: once a read has met the
// forgotten token (the self-check's, every second here), the client's watch never opens
// again. etcdsd must get going again with a new client, and serve what was written
// meanwhile.
func TestAuthAcrossRestart(t *testing.T) {
	perRelease(t, authAcrossRestart)
}

// perRelease runs test once on each etcd release of the run, as a subtest named after it.
func perRelease(t *testing.T, test func(t *testing.T, bin string)) {
	clog.Discard()
	dnsserver.Quiet = true
	for _, bin := range releases(t) {
		version, err := devetcd.BinaryVersion(bin)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("etcd "+version, func(t *testing.T) { test(t, bin) })
	}
}

func authAcrossRestart(t *testing.T, bin string) {
	c, err := devetcd.StartCluster(bin, t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	admin, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := admin.Put(ctx, "/skydns/local/example/a", `{"host":"10.52.0.1"}`); err != nil {
		t.Fatal(err)
	}
	if err := devetcd.EnableAuth(ctx, admin, "root-pw",
		devetcd.Reader{User: "dns", Password: "dns-pw", Ranges: [][2]string{devetcd.PrefixRange("/skydns/local/example/")}}); err != nil {
		t.Fatal(err)
	}
	admin.Close()

	inst, ports := testserver.Start(t, 1, func(p []int) string {
		return fmt.Sprintf(".:%d {\n bind 127.0.0.1\n etcdsd example.local {\n  endpoint %s\n  credentials dns dns-pw\n  verify 1s\n }\n}\n", p[0], c.Endpoint(0))
	})
	defer testserver.Stop(inst)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	waitA(t, addr, "a.example.local.", "10.52.0.1")
	root, err := c.ClientAs("root", "root-pw")
	if err != nil {
		t.Fatal(err)
	}
	// Writes after etcdsd's client authenticated: etcd 3.4 then knows the raft index its
	// token names when it restarts, and refuses the token at once instead of waiting.
	for i := range 3 {
		if _, err := root.Put(ctx, fmt.Sprintf("/skydns/local/example/w%d", i), `{"host":"10.52.1.1"}`); err != nil {
			t.Fatal(err)
		}
	}
	root.Close()
	waitA(t, addr, "w2.example.local.", "10.52.1.1")

	c.Stop(0)
	time.Sleep(2 * time.Second) // the watch retries against no etcd meanwhile
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	root, err = c.ClientAs("root", "root-pw")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.Put(ctx, "/skydns/local/example/b", `{"host":"10.52.0.2"}`); err != nil {
		t.Fatal(err)
	}
	waitA(t, addr, "b.example.local.", "10.52.0.2")
}

// waitA waits up to a minute for name to answer the one address want.
func waitA(t *testing.T, addr, name, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
		if err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want A %s within a minute, got %v (%v)", name, want, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// skippedValues sums coredns_etcdsd_skipped_values_total over its reasons.
func skippedValues(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "coredns_etcdsd_skipped_values_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func (l *load) finish() {
	close(l.stop)
	<-l.done
}

// releases returns the etcd binaries to break: the current release's and those of
// $ETCDSD_ETCD_RELEASES (Debian's etcd-server in make test).
func releases(t *testing.T) []string {
	bin, err := devetcd.CurrentBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{bin}, devetcd.Releases()...)
}

func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test runs three etcd processes")
	}
	perRelease(t, faults)
}

func faults(t *testing.T, bin string) {
	c, cli := devetcd.StartClusterFor(t, bin, 3)

	// put retries a write until the cluster takes it, as a deploy script would.
	put := func(key, value string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cli.Put(ctx, key, value)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("put %s: %v", key, err)
			}
		}
	}
	want := map[string]string{}
	for i := range 20 {
		ip := fmt.Sprintf("10.50.0.%d", i+1)
		put(fmt.Sprintf("/skydns/local/example/svc-%d/i1", i), `{"host":"`+ip+`"}`)
		want[fmt.Sprintf("svc-%d.example.local.", i)] = ip
	}

	inst, ports := testserver.Start(t, 1, func(p []int) string {
		return fmt.Sprintf(".:%d {\n bind 127.0.0.1\n etcdsd example.local {\n  endpoint %s\n }\n}\n", p[0], strings.Join(c.Endpoints(), " "))
	})
	defer testserver.Stop(inst)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	l := startLoad(addr, want)

	// visible writes a new record and says how long the write took (it may wait for a new
	// leader) and how long after it DNS answered the record.
	n := 0
	visible := func() string {
		t.Helper()
		n++
		name, ip := fmt.Sprintf("new-%d.example.local.", n), fmt.Sprintf("10.51.0.%d", n)
		start := time.Now()
		put(fmt.Sprintf("/skydns/local/example/new-%d", n), `{"host":"`+ip+`"}`)
		written := time.Now()
		for {
			r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
			if err == nil && len(r.Answer) == 1 {
				return fmt.Sprintf("%v (the write took %v)", time.Since(written).Round(time.Microsecond), written.Sub(start).Round(time.Millisecond))
			}
			if time.Since(written) > 60*time.Second {
				t.Fatalf("%s not in DNS a minute after its write", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("healthy cluster: a new record in DNS %s", visible())

	leader, err := c.Leader(cli)
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(leader)
	t.Logf("leader m%d killed: a new record in DNS %s", leader, visible())
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("m%d back: a new record in DNS %s", leader, visible())

	for i := range 3 {
		if err := c.Signal(i, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		d := visible()
		if err := c.Signal(i, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		t.Logf("m%d frozen: a record written meanwhile in DNS %s", i, d)
	}

	ctx := context.Background()
	st, err := cli.Status(ctx, c.Endpoint(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, st.Header.Revision); err != nil {
		t.Fatal(err)
	}
	for _, ep := range c.Endpoints() {
		if _, err := cli.Defragment(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("after compaction and defragmentation: a new record in DNS %s", visible())

	skipped := skippedValues(t)
	var storm []clientv3.Op
	for i := range 500 {
		storm = append(storm, clientv3.OpPut(fmt.Sprintf("/skydns/local/example/storm/k%d", i), []string{`{"host":`, `[]`, `{"port":"x"}`, `{"host":"999.1.1.1"}`}[i%4]))
	}
	for len(storm) > 0 {
		k := min(len(storm), 100)
		if _, err := cli.Txn(ctx).Then(storm[:k]...).Commit(); err != nil {
			t.Fatal(err)
		}
		storm = storm[k:]
	}
	t.Logf("after a storm of 500 bad values: a new record in DNS %s", visible())
	if got := skippedValues(t) - skipped; got != 500 {
		t.Errorf("skipped_values_total went up by %v for 500 bad values", got)
	}
	// Each bad value still makes its name exist: NODATA, not NXDOMAIN nor SERVFAIL.
	for _, name := range []string{"storm.example.local.", "k0.storm.example.local.", "k1.storm.example.local.", "k2.storm.example.local.", "k3.storm.example.local."} {
		r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("%s: want NODATA, got %v (%v)", name, r, err)
		}
	}

	for i := range 3 {
		c.Kill(i)
	}
	time.Sleep(3 * time.Second) // the whole cluster down: answers come from the index
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	t.Logf("whole cluster restarted: a new record in DNS %s", visible())

	l.finish()
	t.Logf("load: %d queries for unchanged names, %d failed", l.total.Load(), l.failed.Load())
	if l.failed.Load() > 0 {
		t.Errorf("%d of %d queries for unchanged names failed; first: %q", l.failed.Load(), l.total.Load(), l.firstFailures)
	}
}

// etcd's gRPC proxy coalesces the watches of many replicas into one, but answers no
// watch progress request. etcdsd must follow a quiet zone through it without taking the
// silence for a stuck watch (a new watch every second, a new client every two), serve
// every change, and come back after the proxy restarts.
func TestThroughGRPCProxy(t *testing.T) {
	perRelease(t, throughGRPCProxy)
}

func throughGRPCProxy(t *testing.T, bin string) {
	c, cli := devetcd.StartClusterFor(t, bin, 1)
	ctx := context.Background()
	if _, err := cli.Put(ctx, "/skydns/local/example/a", `{"host":"10.53.0.1"}`); err != nil {
		t.Fatal(err)
	}
	proxy, err := devetcd.StartProxy(bin, c.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()
	inst, ports := testserver.Start(t, 1, func(p []int) string {
		return fmt.Sprintf(".:%d {\n bind 127.0.0.1\n etcdsd example.local {\n  endpoint %s\n }\n}\n", p[0], proxy.Endpoint)
	})
	defer testserver.Stop(inst)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	waitA(t, addr, "a.example.local.", "10.53.0.1")

	// A quiet zone: the watch must stay as it is. Its stream then carries nothing to the
	// proxy (no progress requests, no new watches).
	time.Sleep(2 * time.Second) // past the first silence, when etcdsd finds out
	before := watchMessages(t, proxy.Metrics)
	time.Sleep(3 * time.Second)
	if n := watchMessages(t, proxy.Metrics) - before; n > 0 {
		t.Errorf("%v watch messages reached the proxy in 3 s of quiet, want none", n)
	}
	if _, err := cli.Put(ctx, "/skydns/local/example/b", `{"host":"10.53.0.2"}`); err != nil {
		t.Fatal(err)
	}
	waitA(t, addr, "b.example.local.", "10.53.0.2")

	// The proxy restarts, and etcd compacts meanwhile: etcdsd's watch breaks, finds its
	// revision compacted when the proxy is back, and lists again.
	proxy.Stop()
	put, err := cli.Put(ctx, "/skydns/local/example/c", `{"host":"10.53.0.3"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, put.Header.Revision); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := proxy.Restart(); err != nil {
		t.Fatal(err)
	}
	waitA(t, addr, "c.example.local.", "10.53.0.3")
}

// watchMessages reads how many messages the proxy's watch streams have received.
func watchMessages(t *testing.T, metrics string) float64 {
	t.Helper()
	m, err := devetcd.Scrape(metrics)
	if err != nil {
		t.Fatal(err)
	}
	return devetcd.Sum(m, "grpc_server_msg_received_total", map[string]string{"grpc_method": "Watch", "grpc_service": "etcdserverpb.Watch"})
}
