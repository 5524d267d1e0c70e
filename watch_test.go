package etcdsd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/core/dnsserver" // registers the "dns" server type for caddy.Start
	_ "github.com/coredns/coredns/plugin/bind"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/index/indextest"
	"github.com/etcdsd/etcdsd/internal/testserver"
	"github.com/etcdsd/etcdsd/internal/wait"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func query(t *testing.T, e *Etcdsd, name string, qtype uint16) *dns.Msg {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := e.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(name, qtype)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rec.Msg
}

func TestWatchPropagatesPutAndDelete(t *testing.T) {
	e := startPlugin(t, "etcdsd example.local {\n path /p\n}")
	if m := query(t, e, "svc.example.local.", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Fatalf("want NXDOMAIN before the put, got %s", dns.RcodeToString[m.Rcode])
	}

	waitRevision(t, e, put(t, "/p/local/example/svc/i1", `{"host":"10.8.0.1"}`))
	serve(t, e, []test.Case{{
		Qname: "svc.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("svc.example.local. 300 IN A 10.8.0.1")},
	}})

	waitRevision(t, e, put(t, "/p/local/example/svc/i1", `{"host":"10.8.0.2","ttl":10}`))
	serve(t, e, []test.Case{{
		Qname: "svc.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("svc.example.local. 10 IN A 10.8.0.2")},
	}})

	waitRevision(t, e, del(t, "/p/local/example/svc/i1"))
	serve(t, e, []test.Case{{
		Qname: "svc.example.local.", Qtype: dns.TypeA,
		Rcode: dns.RcodeNameError,
		Ns:    []dns.RR{indextest.SOA},
	}})
}

func TestWatchBadValueAmongSiblings(t *testing.T) {
	put(t, "/b/local/example/svc/good", `{"host":"10.8.1.1"}`)
	e := startPlugin(t, "etcdsd example.local {\n path /b\n}")
	want := []test.Case{{
		Qname: "svc.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("svc.example.local. 300 IN A 10.8.1.1")},
	}}

	// Bad values arriving through the watch, of every kind, never hide the good one, and
	// each is counted under its reason.
	for _, tc := range []struct{ value, reason string }{
		{`{"host":`, skydns.ReasonInvalidJSON},
		{``, skydns.ReasonInvalidJSON},
		{`[1,2]`, skydns.ReasonNotObject},
		{`"a string"`, skydns.ReasonNotObject},
		{`{"port":"eighty"}`, skydns.ReasonWrongType},
		{`{"host":"999.1.1.1"}`, skydns.ReasonInvalidHost},
		{`{"host":"10.8.1.9","port":70000}`, skydns.ReasonOutOfRange},
	} {
		before := testutil.ToFloat64(skippedTotal.WithLabelValues(tc.reason))
		waitRevision(t, e, put(t, "/b/local/example/svc/bad", tc.value))
		serve(t, e, want)
		if got := testutil.ToFloat64(skippedTotal.WithLabelValues(tc.reason)); got != before+1 {
			t.Errorf("%q: skipped_values_total{reason=%q} went from %v to %v, want +1", tc.value, tc.reason, before, got)
		}
	}
	// Fixing the bad value brings it in.
	waitRevision(t, e, put(t, "/b/local/example/svc/bad", `{"host":"10.8.1.2"}`))
	serve(t, e, []test.Case{{
		Qname: "svc.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("svc.example.local. 300 IN A 10.8.1.1"),
			test.A("svc.example.local. 300 IN A 10.8.1.2"),
		},
	}})
}

// Keys of a sibling that shares the zone's prefix up to a byte before '/' ("example-old")
// lie in the watched range but are no one's: they are neither indexed nor checked, whether
// listed or watched.
func TestSiblingPrefixIsNotIndexed(t *testing.T) {
	put(t, "/sib/local/example/x", `{"host":"10.8.2.1"}`)
	put(t, "/sib/local/example-old/listed", `{"host":`)
	skipped := testutil.ToFloat64(skippedTotal.WithLabelValues(skydns.ReasonInvalidJSON))
	e := startPlugin(t, "etcdsd example.local {\n path /sib\n}")
	put(t, "/sib/local/example.old/watched", `{"host":`)
	waitRevision(t, e, put(t, "/sib/local/example/y", `{"host":"10.8.2.2"}`))
	w := e.byZone["example.local."]
	if n := w.snapshot().Len(); n != 2 {
		t.Errorf("index holds %d keys, want only the zone's two", n)
	}
	if got := testutil.ToFloat64(skippedTotal.WithLabelValues(skydns.ReasonInvalidJSON)); got != skipped {
		t.Errorf("a sibling's bad values were counted: skipped went from %v to %v", skipped, got)
	}
	serve(t, e, []test.Case{{
		Qname: "x.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("x.example.local. 300 IN A 10.8.2.1")},
	}})
}

// The SOA serial is the revision of the index's last change: a write in the zone moves
// it to the write's revision; writes elsewhere, in a sibling prefix that the watched range
// holds too or outside it, leave it alone.
func TestSerialIsTheZoneRevision(t *testing.T) {
	put(t, "/ser/local/example/x", `{"host":"10.8.9.1"}`)
	e := startPlugin(t, "etcdsd example.local {\n path /ser\n}")
	serial := func() uint32 {
		t.Helper()
		m := query(t, e, "example.local.", dns.TypeSOA)
		if len(m.Answer) != 1 {
			t.Fatalf("want one SOA, got %v", m.Answer)
		}
		return m.Answer[0].(*dns.SOA).Serial
	}
	w := e.watchers[0]
	if s := serial(); int64(s) != w.snapshot().Rev() {
		t.Fatalf("serial %d, index revision %d", s, w.snapshot().Rev())
	}
	before := serial()
	put(t, "/ser/local/example-old/x", `{"host":"10.8.9.2"}`)
	put(t, "/ser/local/other/x", `{"host":"10.8.9.3"}`)
	time.Sleep(200 * time.Millisecond) // time enough for the watch to deliver the sibling's event
	if s := serial(); s != before {
		t.Errorf("serial moved from %d to %d with writes outside the zone", before, s)
	}
	for _, write := range []func() int64{
		func() int64 { return put(t, "/ser/local/example/y", `{"host":"10.8.9.4"}`) },
		func() int64 { return del(t, "/ser/local/example/x") },
	} {
		rev := write()
		waitRevision(t, e, rev)
		if s := serial(); int64(s) != rev {
			t.Errorf("serial %d after a change at revision %d", s, rev)
		}
	}
}

func TestLeaseTTLAndExpiry(t *testing.T) {
	ctx := context.Background()
	grant := func(ttl int64) clientv3.LeaseID {
		t.Helper()
		l, err := testEtcd.Client().Grant(ctx, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	long, short := grant(600), grant(5)
	put(t, "/l/local/example/long/i1", `{"host":"10.8.2.1"}`, clientv3.WithLease(long))
	put(t, "/l/local/example/capped/i1", `{"host":"10.8.2.2","ttl":20}`, clientv3.WithLease(long))
	put(t, "/l/local/example/short/i1", `{"host":"10.8.2.3"}`, clientv3.WithLease(short))
	e := startPlugin(t, "etcdsd example.local {\n path /l\n max-lease-ttl 500\n}")

	serve(t, e, []test.Case{
		// The lease's 600 s are clamped to max-lease-ttl.
		{Qname: "long.example.local.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("long.example.local. 500 IN A 10.8.2.1")}},
		// A record TTL below the lease's wins.
		{Qname: "capped.example.local.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("capped.example.local. 20 IN A 10.8.2.2")}},
		// A short lease is raised to min-lease-ttl.
		{Qname: "short.example.local.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("short.example.local. 30 IN A 10.8.2.3")}},
	})

	// When the short lease expires, etcd deletes the key and the watch removes it.
	deadline := time.Now().Add(15 * time.Second)
	for query(t, e, "short.example.local.", dns.TypeA).Rcode != dns.RcodeNameError {
		if time.Now().After(deadline) {
			t.Fatal("record of an expired lease still served")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A lease that arrives through the watch is resolved before its key is served.
	mid := grant(100)
	waitRevision(t, e, put(t, "/l/local/example/mid/i1", `{"host":"10.8.2.4"}`, clientv3.WithLease(mid)))
	m := query(t, e, "mid.example.local.", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl < 98 || m.Answer[0].Header().Ttl > 100 {
		t.Fatalf("want one A with a TTL of about 100 from the lease, got %v", m.Answer)
	}
	if n := leaseCount(e); n != 2 {
		t.Fatalf("want only the leases of live keys tracked (long and mid), got %d", n)
	}
}

func leaseCount(e *Etcdsd) int { return e.watchers[0].b.Leases() }

func TestListInPagesAtOneRevision(t *testing.T) {
	// More keys than two pages, so the list continues after the last key of each page.
	const pageSize, keys = 100, 2*100 + 10
	ops := make([]clientv3.Op, 0, keys)
	for i := range keys {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("/pg/local/example/many/i%05d", i), fmt.Sprintf(`{"host":"10.20.%d.%d"}`, i/256, i%256)))
	}
	if err := devetcd.Commit(context.Background(), testEtcd.Client(), ops); err != nil {
		t.Fatal(err)
	}
	// A neighbour of the prefix stays out of the index.
	put(t, "/pgx/local/example/many/intruder", `{"host":"10.99.0.1"}`)
	e := parsePlugin(t, "etcdsd example.local {\n path /pg\n}")
	e.watchers[0].paging.Size = pageSize
	e.OnStartup()
	defer e.OnShutdown()
	if n := e.watchers[0].snapshot().Len(); n != keys {
		t.Fatalf("want %d keys in the index, got %d", keys, n)
	}
	if m := query(t, e, "many.example.local.", dns.TypeA); len(m.Answer) != keys {
		t.Fatalf("want %d answers, got %d", keys, len(m.Answer))
	}
}

func TestRelistKeepsUnchangedEntries(t *testing.T) {
	put(t, "/rl/local/example/a", `{"host":"10.8.3.1"}`)
	put(t, "/rl/local/example/b", `{"host":`)
	w := newWatcher(watchConfig{root: "/rl"})
	c := lend(testEtcd.Client())
	ctx := context.Background()
	if err := w.list(ctx, c, "start"); err != nil {
		t.Fatal(err)
	}
	skipped := testutil.ToFloat64(skippedTotal.WithLabelValues("invalid_json"))
	put(t, "/rl/local/example/c", `{"host":"10.8.3.3"}`)

	// A second list, as after a compaction: unchanged keys keep their decoded entries
	// (TestBuilderRelist), so the bad value is not counted again, and the new key comes in.
	if err := w.list(ctx, c, "compacted"); err != nil {
		t.Fatal(err)
	}
	s := w.snapshot()
	if got := testutil.ToFloat64(skippedTotal.WithLabelValues("invalid_json")); got != skipped {
		t.Errorf("unchanged bad value counted again on re-list: %v -> %v", skipped, got)
	}
	if !s.Has("/rl/local/example/c") {
		t.Error("key written meanwhile missing after re-list")
	}
}

// A reload stops the old instance's watches, and a shutdown the new one's: no goroutine
// of either is left.
func TestReloadLeavesNoWatchBehind(t *testing.T) {
	put(t, "/r1/local/example/x", `{"host":"10.8.4.1"}`)
	put(t, "/r2/local/example/x", `{"host":"10.8.4.2"}`)
	corefile := func(port int, path string) string {
		return fmt.Sprintf("example.local:%d {\n bind 127.0.0.1\n etcdsd {\n path %s\n endpoint %s\n }\n}\n", port, path, testEtcd.Server().Endpoint)
	}
	before := goleak.IgnoreCurrent()
	inst, ports := testserver.Start(t, 1, func(p []int) string { return corefile(p[0], "/r1") })
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	expectA(t, addr, "x.example.local.", "10.8.4.1")

	inst, err := inst.Restart(caddy.CaddyfileInput{ServerTypeName: "dns", Contents: []byte(corefile(ports[0], "/r2"))})
	if err != nil {
		t.Fatal(err)
	}
	expectA(t, addr, "x.example.local.", "10.8.4.2")

	errs := inst.ShutdownCallbacks()
	if err := inst.Stop(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	goleak.VerifyNone(t, before)
}

func TestSeveralStanzasInOneServerBlock(t *testing.T) {
	put(t, "/ma/local/a/x", `{"host":"10.8.6.1"}`)
	put(t, "/mb/local/b/x", `{"host":"10.8.6.2"}`)
	addr := startServer(t, fmt.Sprintf(" etcdsd a.local {\n  path /ma\n  endpoint %[1]s\n }\n"+
		" etcdsd b.local {\n  path /mb\n  endpoint %[1]s\n }", testEtcd.Server().Endpoint))
	expectA(t, addr, "x.a.local.", "10.8.6.1")
	expectA(t, addr, "x.b.local.", "10.8.6.2")
}

func expectA(t *testing.T, addr, name, want string) {
	t.Helper()
	m, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != want {
		t.Fatalf("%s: want A %s, got %v", name, want, m)
	}
}

func TestServesWhileEtcdIsDownAndResumes(t *testing.T) {
	// An etcd of this test's own, to stop and restart.
	dir, srv, cli := devetcd.StartFor(t)
	if _, err := cli.Put(context.Background(), "/skydns/local/example/svc/i1", `{"host":"10.8.5.1"}`); err != nil {
		t.Fatal(err)
	}
	// One plugin answers from its index however long etcd is away; one with max_stale
	// gives up after three seconds. Both hear of etcd's silence within a second.
	start := func(stanza string) *Etcdsd {
		stanzas, err := parse(caddy.NewTestController("dns", stanza))
		if err != nil {
			t.Fatal(err)
		}
		e := stanzas[0]
		for _, w := range e.watchers {
			w.progressEvery, w.silentAfter = 100*time.Millisecond, time.Second
		}
		e.OnStartup()
		t.Cleanup(func() { e.OnShutdown() })
		return e
	}
	lists := totalLists()
	patient := start("etcdsd example.local {\n endpoint " + srv.Endpoint + "\n}")
	strict := start("etcdsd example.local {\n endpoint " + srv.Endpoint + "\n max_stale 3s\n}")
	// The second answers from the first's index until its own list is in (as after a
	// reload), so OnStartup need not wait for it: wait here.
	wait.For(t, wait.Long, "both first lists", func() bool { return totalLists() == lists+2 })

	want := []test.Case{{
		Qname: "svc.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("svc.example.local. 300 IN A 10.8.5.1")},
	}}
	serve(t, patient, want)
	serve(t, strict, want)
	lists = totalLists()
	srv.Close()

	// Gone: the patient plugin answers from its index and stays ready; the strict one
	// fails once max_stale has passed; both report staleness.
	prefix := "/skydns/local/example"
	wait.For(t, wait.Long, "stale gauge", func() bool { return testutil.ToFloat64(staleGauge.WithLabelValues(prefix)) == 1 })
	serve(t, patient, want)
	if !patient.Ready() {
		t.Error("plugin without max_stale not ready while etcd is away")
	}
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, err := strict.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("svc.example.local.", dns.TypeA))
	if rcode != dns.RcodeServerFailure || !errors.Is(err, errTooStale) {
		t.Errorf("past max_stale: want SERVFAIL for being too stale, got rcode %d, err %v", rcode, err)
	}
	if strict.Ready() {
		t.Error("plugin ready past max_stale")
	}

	// The same member comes back on the same port; the watch resumes where it was.
	srv, err = devetcd.Start(dir, srv.Port())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli2, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	resp, err := cli2.Put(context.Background(), "/skydns/local/example/svc/i2", `{"host":"10.8.5.2"}`)
	if err != nil {
		t.Fatal(err)
	}
	waitRevision(t, patient, resp.Header.Revision)
	waitRevision(t, strict, resp.Header.Revision)
	want = []test.Case{{
		Qname: "svc.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("svc.example.local. 300 IN A 10.8.5.1"),
			test.A("svc.example.local. 300 IN A 10.8.5.2"),
		},
	}}
	serve(t, patient, want)
	serve(t, strict, want)
	wait.For(t, wait.Long, "fresh again", func() bool { return testutil.ToFloat64(staleGauge.WithLabelValues(prefix)) == 0 })
	if got := totalLists(); got != lists {
		t.Errorf("lists_total went from %v to %v: the watches listed again instead of resuming", lists, got)
	}
	if !strict.Ready() {
		t.Error("plugin with max_stale not ready after etcd came back")
	}
	// Close the watches before etcd, which otherwise waits seconds for the streams to end.
	patient.OnShutdown()
	strict.OnShutdown()
}

// totalLists sums lists_total over its reasons.
func totalLists() float64 {
	sum := 0.0
	for _, reason := range listReasons {
		sum += testutil.ToFloat64(listsTotal.WithLabelValues(reason))
	}
	return sum
}

func TestWatchBehindCompactionListsAgain(t *testing.T) {
	ctx := context.Background()
	put(t, "/cp/local/example/a", `{"host":"10.8.7.1"}`)
	w := newWatcher(watchConfig{root: "/cp", connect: testConnect})
	if err := w.list(ctx, lend(testEtcd.Client()), "start"); err != nil {
		t.Fatal(err)
	}
	// Changes the watcher has not seen, then compaction past them: a watch from the
	// watcher's revision can only fail.
	put(t, "/cp/local/example/b", `{"host":"10.8.7.2"}`)
	del(t, "/cp/local/example/a")
	if _, err := testEtcd.Client().Compact(ctx, put(t, "/cp/local/example/c", `{"host":"10.8.7.3"}`)); err != nil {
		t.Fatal(err)
	}
	relists := testutil.ToFloat64(listsTotal.WithLabelValues("compacted"))

	w.run()
	defer w.stop()
	wait.For(t, wait.Long, "a list after compaction", func() bool {
		s := w.snapshot()
		return !s.Has("/cp/local/example/a") && s.Has("/cp/local/example/b") && s.Has("/cp/local/example/c")
	})
	if got := testutil.ToFloat64(listsTotal.WithLabelValues("compacted")); got != relists+1 {
		t.Errorf("lists_total{reason=compacted} went from %v to %v, want +1", relists, got)
	}

	// Compaction and defragmentation while the watch is current change nothing.
	rev := put(t, "/cp/local/example/d", `{"host":"10.8.7.4"}`)
	if _, err := testEtcd.Client().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := testEtcd.Client().Defragment(ctx, testEtcd.Server().Endpoint); err != nil {
		t.Fatal(err)
	}
	rev = put(t, "/cp/local/example/e", `{"host":"10.8.7.5"}`)
	wait.For(t, wait.Long, "events after compaction and defrag", func() bool { return w.snapshot().Rev() >= rev })
	if got := testutil.ToFloat64(listsTotal.WithLabelValues("compacted")); got != relists+1 {
		t.Errorf("a current watch listed again after compaction: %v lists, want %v", got, relists+1)
	}
	if n := w.snapshot().Len(); n != 4 {
		t.Errorf("want keys b, c, d, e in the index, got %d keys", n)
	}
}

// A reload while etcd is away keeps answering from the index the old instance held, and a
// reload that drops a zone drops the zone's series.
func TestReloadWhileEtcdIsAway(t *testing.T) {
	dir, srv, cli := devetcd.StartFor(t)
	if _, err := cli.Put(context.Background(), "/reload/local/example/x", `{"host":"10.8.10.1"}`); err != nil {
		t.Fatal(err)
	}
	corefile := func(port int, zones ...string) string {
		for i := range zones {
			zones[i] += fmt.Sprintf(":%d", port)
		}
		return fmt.Sprintf("%s {\n bind 127.0.0.1\n etcdsd {\n path /reload\n endpoint %s\n }\n}\n", strings.Join(zones, " "), srv.Endpoint)
	}
	inst, ports := testserver.Start(t, 1, func(p []int) string { return corefile(p[0], "example.local") })
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	expectA(t, addr, "x.example.local.", "10.8.10.1")

	srv.Close()
	inst, err := inst.Restart(caddy.CaddyfileInput{ServerTypeName: "dns", Contents: []byte(corefile(ports[0], "example.local", "other.local"))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { testserver.Stop(inst) }()
	expectA(t, addr, "x.example.local.", "10.8.10.1")

	// etcd back: the new instance lists and follows it.
	if srv, err = devetcd.Start(dir, srv.Port()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli2, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	if _, err := cli2.Put(context.Background(), "/reload/local/example/y", `{"host":"10.8.10.2"}`); err != nil {
		t.Fatal(err)
	}
	wait.For(t, wait.Long, "the write after etcd came back", func() bool {
		m, err := dns.Exchange(new(dns.Msg).SetQuestion("y.example.local.", dns.TypeA), addr)
		return err == nil && len(m.Answer) == 1
	})

	wait.For(t, wait.Long, "the series of the zone the reload added", func() bool { return hasSeries(t, "coredns_etcdsd_keys", "/reload/local/other") })
	if inst, err = inst.Restart(caddy.CaddyfileInput{ServerTypeName: "dns", Contents: []byte(corefile(ports[0], "example.local"))}); err != nil {
		t.Fatal(err)
	}
	if hasSeries(t, "coredns_etcdsd_keys", "/reload/local/other") {
		t.Error("the series of a zone the reload dropped stayed")
	}
	if !hasSeries(t, "coredns_etcdsd_keys", "/reload/local/example") {
		t.Error("the series of a zone served before and after the reload went")
	}
}

// hasSeries reports whether the metric has a series for prefix.
func hasSeries(t *testing.T, name, prefix string) bool {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "prefix" && l.GetValue() == prefix {
					return true
				}
			}
		}
	}
	return false
}

// In a quiet etcd, with no write after the list, the watch starts past etcd's revision and
// etcd answers none of its progress requests: the watch is kept, on status answers, and
// not taken for one through a gRPC proxy; after a write anywhere in etcd, progress
// requests are answered.
func TestQuietWatchIsKept(t *testing.T) {
	// An etcd of its own: on the shared one, another test's compaction would make a watch
	// begun again list again, rightly.
	_, srv, cli := devetcd.StartFor(t)
	t.Cleanup(srv.Close)
	if _, err := cli.Put(context.Background(), "/qw/local/example/a", `{"host":"10.9.1.1"}`); err != nil {
		t.Fatal(err)
	}
	logs := captureLog(t)
	e := stanzaOn(t, srv, "example.local", "path /qw")
	if err := e.OnStartup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.OnShutdown() })
	w := e.watchers[0]
	// This zone's lists only: other tests' watchers may still list meanwhile.
	lastList := func() float64 { return testutil.ToFloat64(listTimestamp.WithLabelValues(w.root)) }
	before := lastList()
	time.Sleep(3 * w.silentAfter)
	if w.peer.proxy.Load() {
		t.Errorf("after %v of quiet, a direct etcd was taken for a gRPC proxy", 3*w.silentAfter)
	}
	if _, err := cli.Put(context.Background(), "/elsewhere/qw", "x"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, wait.Long, "a progress answer", w.peer.answersProgress.Load)
	if lastList() != before {
		t.Errorf("the quiet zone was listed again:\n%s", logs)
	}
}

// Through etcd's gRPC proxy, a watch that resumes from a compacted revision can be joined
// to a proxy watch that compaction ended, and then hears nothing, not even that it was
// compacted (etcd-io/etcd#21813, #10650). Here a client that never cancels its compacted
// watch, as older clients do not, keeps such a dead proxy watch while the watcher is cut
// off and after: the watcher must find its revision compacted and list again, and hear
// changes once the dead watch is gone.
func TestProxiedWatchBehindCompaction(t *testing.T) {
	perRelease(t, func(t *testing.T, bin, _ string) { proxiedWatchBehindCompaction(t, bin) })
}

func proxiedWatchBehindCompaction(t *testing.T, bin string) {
	ctx := context.Background()
	proxy, err := devetcd.StartProxy(bin, []string{testEtcd.Server().Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()
	relay, err := devetcd.StartRelay(strings.TrimPrefix(proxy.Endpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	root := fmt.Sprintf("/pw%d", time.Now().UnixNano())
	put(t, root+"/local/example/a", `{"host":"10.9.2.1"}`)
	e := &Etcdsd{etcdTarget: etcdTarget{endpoints: []string{"http://" + relay.Addr}}}
	w := newWatcher(watchConfig{root: root, connect: connector(e.newClient, nil)})
	w.proxyRewatch = 2 * w.silentAfter
	if err := w.list(ctx, lend(testEtcd.Client()), "start"); err != nil {
		t.Fatal(err)
	}
	zone := w.b.Spans()[0]
	w.run()
	defer w.stop()
	wait.For(t, wait.Long, "the watch through the proxy taken for one", w.peer.proxy.Load)

	relay.Cut(true)
	put(t, root+"/local/example/b", `{"host":"10.9.2.2"}`)
	if _, err := testEtcd.Client().Compact(ctx, put(t, root+"/local/example/c", `{"host":"10.9.2.3"}`)); err != nil {
		t.Fatal(err)
	}
	// A watch of the zone's range from revision 1 on a raw stream, which is never
	// cancelled: the proxy keeps it, dead, and joins later watches of the range to it.
	other, err := clientv3.New(clientv3.Config{Endpoints: []string{proxy.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sctx, closeStream := context.WithCancel(ctx)
	defer closeStream()
	stream, err := etcdserverpb.NewWatchClient(other.ActiveConnection()).Watch(sctx)
	if err != nil {
		t.Fatal(err)
	}
	create := &etcdserverpb.WatchCreateRequest{Key: []byte(zone.Start), RangeEnd: []byte(zone.End), StartRevision: 1}
	if err := stream.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: create}}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.CompactRevision != 0 {
			break
		}
	}
	relists := testutil.ToFloat64(listsTotal.WithLabelValues("compacted"))
	relay.Cut(false)

	wait.For(t, wait.Long, "the changes made while cut off", func() bool {
		s := w.snapshot()
		return s.Has(root+"/local/example/b") && s.Has(root+"/local/example/c")
	})
	if got := testutil.ToFloat64(listsTotal.WithLabelValues("compacted")); got != relists+1 {
		t.Errorf("lists_total{reason=compacted} went from %v to %v, want +1", relists, got)
	}

	// The watch made after the list joins the dead one too and hears nothing; after a quiet
	// it finds what it missed (a put, then a delete) and lists again.
	missed := testutil.ToFloat64(listsTotal.WithLabelValues(listMissed))
	put(t, root+"/local/example/d", `{"host":"10.9.2.4"}`)
	wait.For(t, wait.Long, "a put the dead watch did not deliver", func() bool {
		return w.snapshot().Has(root + "/local/example/d")
	})
	del(t, root+"/local/example/a")
	wait.For(t, wait.Long, "a delete the dead watch did not deliver", func() bool {
		return !w.snapshot().Has(root + "/local/example/a")
	})
	if got := testutil.ToFloat64(listsTotal.WithLabelValues(listMissed)); got < missed+2 {
		t.Errorf("lists_total{reason=missed} went from %v to %v, want at least +2", missed, got)
	}

	// Once the dead watch has gone, a watch made again hears changes.
	closeStream()
	rev := put(t, root+"/local/example/e", `{"host":"10.9.2.5"}`)
	wait.For(t, wait.Long, "a change after the dead watch has gone", func() bool { return w.snapshot().Rev() >= rev })
}
