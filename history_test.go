package etcdsd

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/wait"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// perRelease runs test once on the current etcd and once on each release of the run
// (devetcd.Releases), as a subtest named after the release.
func perRelease(t *testing.T, test func(t *testing.T, bin, version string)) {
	bin, err := devetcd.CurrentBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range append([]string{bin}, devetcd.Releases()...) {
		version, err := devetcd.BinaryVersion(bin)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("etcd "+version, func(t *testing.T) { test(t, bin, version) })
	}
}

// relayedWatcher starts a watcher of root on a one-member cluster of bin, reached through a
// relay that the test can cut, and waits for its first list. It returns the cluster, a
// client of it that goes around the relay, and the relay.
func relayedWatcher(t *testing.T, bin, root string) (*watcher, *devetcd.Cluster, *clientv3.Client, *devetcd.Relay) {
	t.Helper()
	c, cli := devetcd.StartClusterFor(t, bin, 1)
	relay, err := devetcd.StartRelay(strings.TrimPrefix(c.Endpoint(0), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Close)
	e := &Etcdsd{etcdTarget: etcdTarget{endpoints: []string{"http://" + relay.Addr}}}
	w := newWatcher(watchConfig{root: root, connect: connector(e.newClient, nil)})
	w.run()
	t.Cleanup(w.stop) // before the relay and the cluster close
	wait.For(t, wait.Long, "the first list", func() bool { return w.snapshot() != nil })
	return w, c, cli, relay
}

func putAt(t *testing.T, cli *clientv3.Client, key, value string) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), key, value)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func delAt(t *testing.T, cli *clientv3.Client, key string) int64 {
	t.Helper()
	resp, err := cli.Delete(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// A watch that resumes from the revision of a DELETE that etcd has since compacted away
// never delivers that delete on etcd before 3.4.34 and 3.5.15 (etcd-io/etcd#18089):
// compaction removes the tombstone, and the server takes a watch from the compacted
// revision itself for a current one. Here etcdsd is cut off from etcd while a record is
// deleted, another key is written and etcd is compacted at the delete; when it is back, the
// deleted record must go.
func TestCompactedDeleteIsNotLost(t *testing.T) {
	perRelease(t, func(t *testing.T, bin, _ string) {
		root := "/cd"
		w, _, cli, relay := relayedWatcher(t, bin, root)
		putAt(t, cli, root+"/local/example/a", `{"host":"10.9.3.1"}`)
		rev := putAt(t, cli, root+"/local/example/b", `{"host":"10.9.3.2"}`)
		wait.For(t, wait.Long, "both records", func() bool { return w.snapshot().Rev() >= rev })

		relay.Cut(true)
		deleted := delAt(t, cli, root+"/local/example/a")
		putAt(t, cli, "/elsewhere/x", "x")
		if _, err := cli.Compact(context.Background(), deleted); err != nil {
			t.Fatal(err)
		}
		relay.Cut(false)
		wait.For(t, wait.Long, "the compacted delete", func() bool { return !w.snapshot().Has(root + "/local/example/a") })
		if !w.snapshot().Has(root + "/local/example/b") {
			t.Error("b is gone too")
		}
	})
}

// An etcd whose data went (a member on an emptyDir) comes back on empty data, with the
// same member and cluster IDs and its revision back at 1: a watch resumed from the index's
// revision waits for a future revision, and the index keeps records etcd no longer has.
// etcdsd must notice, list again at once, and keep the SOA serial increasing (RFC 1982)
// for secondaries.
func TestEmptyRestartIsNoticed(t *testing.T) {
	perRelease(t, func(t *testing.T, bin, _ string) {
		root := "/er"
		w, c, cli, _ := relayedWatcher(t, bin, root)
		var rev int64
		for i := range 5 {
			rev = putAt(t, cli, fmt.Sprintf("%s/local/example/old%d", root, i), `{"host":"10.9.4.1"}`)
		}
		wait.For(t, wait.Long, "the records", func() bool { return w.snapshot().Rev() >= rev })
		before := w.snapshot().Serial()
		restored := testutil.ToFloat64(listsTotal.WithLabelValues(listRestored))

		if err := c.Wipe(0); err != nil {
			t.Fatal(err)
		}
		wait.For(t, wait.Long, "the index of the empty etcd", func() bool { return w.snapshot().Len() == 0 })
		if got := w.snapshot().Serial(); int32(got-before) <= 0 {
			t.Errorf("serial went from %d to %d across the restart: secondaries would not transfer", before, got)
		}
		if got := testutil.ToFloat64(listsTotal.WithLabelValues(listRestored)); got != restored+1 {
			t.Errorf("lists_total{reason=%q} went from %v to %v, want +1", listRestored, restored, got)
		}
		fresh, err := c.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		putAt(t, fresh, root+"/local/example/new", `{"host":"10.9.4.2"}`)
		wait.For(t, wait.Long, "a write to the empty etcd", func() bool { return w.snapshot().Has(root + "/local/example/new") })
	})
}

// An etcd that starts empty while etcdsd is cut off from it, and takes writes past the
// revision the index had reached before etcdsd hears from it again, shows no header that
// differs (same cluster ID, a term like the old one, a revision ahead): only the key the
// index wrote last, read at the index's revision, tells the histories apart.
func TestEmptyRestartWithWritesPastTheIndex(t *testing.T) {
	perRelease(t, func(t *testing.T, bin, _ string) {
		root := "/erw"
		w, c, cli, relay := relayedWatcher(t, bin, root)
		putAt(t, cli, root+"/local/example/gone", `{"host":"10.9.6.1"}`)
		var rev int64
		for i := range 20 {
			rev = putAt(t, cli, root+"/local/example/kept", fmt.Sprintf(`{"host":"10.9.6.%d"}`, 2+i))
		}
		wait.For(t, wait.Long, "the records", func() bool { return w.snapshot().Rev() >= rev })
		restored := testutil.ToFloat64(listsTotal.WithLabelValues(listRestored))

		relay.Cut(true)
		if err := c.Wipe(0); err != nil {
			t.Fatal(err)
		}
		fresh, err := c.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		putAt(t, fresh, root+"/local/example/new", `{"host":"10.9.6.30"}`)
		putAt(t, fresh, root+"/local/example/new2", `{"host":"10.9.6.31"}`)
		var now int64
		for i := 0; now <= rev+5; i++ {
			now = putAt(t, fresh, root+"/local/example/kept", fmt.Sprintf(`{"host":"10.9.7.%d"}`, i%250))
		}
		relay.Cut(false)
		wait.For(t, wait.Long, "etcd's data after the empty restart", func() bool {
			s := w.snapshot()
			return s.Has(root+"/local/example/new") && !s.Has(root+"/local/example/gone")
		})
		if got := testutil.ToFloat64(listsTotal.WithLabelValues(listRestored)); got != restored+1 {
			t.Errorf("lists_total{reason=%q} went from %v to %v, want +1", listRestored, restored, got)
		}
	})
}

// restorer returns the etcdctl of etcd 3.4 next to bin (Debian's etcd-client package puts
// it beside etcd-server's /usr/bin/etcd), which restores snapshots; "" when there is none.
func restorer(t *testing.T, bin, version string) string {
	t.Helper()
	if !strings.HasPrefix(version, "3.4.") {
		return ""
	}
	ctl := filepath.Join(filepath.Dir(bin), "etcdctl")
	if _, err := os.Stat(ctl); err != nil {
		t.Fatalf("etcd %s has no etcdctl beside it to restore a snapshot with (Debian's etcd-client package): %v", version, err)
	}
	if out, err := exec.Command(ctl, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), version) {
		t.Fatalf("%s version: %v: %s, want %s", ctl, err, out, version)
	}
	return ctl
}

// etcd restored from a snapshot (etcdctl snapshot restore, etcd-io/etcd#16028) has the
// snapshot's revision, below the one the index has applied, and its data: etcdsd must
// answer what the snapshot holds within seconds, watch on from there, and keep the serial
// increasing.
func TestSnapshotRestoreIsNoticed(t *testing.T) {
	perRelease(t, func(t *testing.T, bin, version string) {
		ctl := restorer(t, bin, version)
		if ctl == "" {
			t.Skipf("no snapshot restore for etcd %s here", version)
		}
		root := "/sr"
		w, c, cli, _ := relayedWatcher(t, bin, root)
		putAt(t, cli, root+"/local/example/kept", `{"host":"10.9.5.1"}`)
		putAt(t, cli, root+"/local/example/gone", `{"host":"10.9.5.2"}`)
		snapshot := filepath.Join(t.TempDir(), "snapshot.db")
		if err := c.SaveSnapshot(context.Background(), 0, snapshot); err != nil {
			t.Fatal(err)
		}
		// After the snapshot: writes the restore undoes.
		delAt(t, cli, root+"/local/example/gone")
		rev := putAt(t, cli, root+"/local/example/later", `{"host":"10.9.5.3"}`)
		wait.For(t, wait.Long, "the writes after the snapshot", func() bool { return w.snapshot().Rev() >= rev })
		before := w.snapshot().Serial()

		if err := c.Restore(ctl, snapshot); err != nil {
			t.Fatal(err)
		}
		wait.For(t, wait.Long, "the restored data", func() bool {
			s := w.snapshot()
			return s.Has(root+"/local/example/gone") && !s.Has(root+"/local/example/later")
		})
		if got := w.snapshot().Serial(); int32(got-before) <= 0 {
			t.Errorf("serial went from %d to %d across the restore: secondaries would not transfer", before, got)
		}
		fresh, err := c.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		putAt(t, fresh, root+"/local/example/after", `{"host":"10.9.5.4"}`)
		wait.For(t, wait.Long, "a write after the restore", func() bool { return w.snapshot().Has(root + "/local/example/after") })
		if w.snapshot().Has(root+"/local/example/later") || !w.snapshot().Has(root+"/local/example/kept") {
			t.Error("the index is not the restored data")
		}
	})
}

// countingConn counts the TimeToLive requests of a watcher.
type countingConn struct {
	etcdConn
	leaseRequests *atomic.Int64
}

func (c countingConn) TimeToLive(ctx context.Context, id clientv3.LeaseID, opts ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	c.leaseRequests.Add(1)
	return c.etcdConn.TimeToLive(ctx, id, opts...)
}

// A new leader extends every lease to its granted TTL (etcd's lessor.Promote), and a
// leased record's TTL says so: the index learns it with one TimeToLive, not one per lease,
// which cost etcd replicas × leases requests at every leader change (BENCHMARKS.md).
func TestLeaderChangeCostsOneLeaseRequest(t *testing.T) {
	perRelease(t, func(t *testing.T, bin, _ string) {
		ctx := context.Background()
		c, cli := devetcd.StartClusterFor(t, bin, 3)
		const leases = 200
		var ids []clientv3.LeaseID
		var ops []clientv3.Op
		for i := range leases {
			l, err := cli.Grant(ctx, 600)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, l.ID)
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/lc/local/example/s%03d", i), `{"host":"10.9.6.1"}`, clientv3.WithLease(l.ID)))
		}
		if err := devetcd.Commit(ctx, cli, ops); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // so that a full TTL differs from what is left

		stanzas, err := parse(caddy.NewTestController("dns", "etcdsd example.local {\n path /lc\n endpoint "+strings.Join(c.Endpoints(), " ")+"\n}"))
		if err != nil {
			t.Fatal(err)
		}
		e := stanzas[0]
		var requests atomic.Int64
		w := e.watchers[0]
		dial := w.connect
		w.connect = func(ctx context.Context) (etcdConn, error) {
			c, err := dial(ctx)
			if err != nil {
				return nil, err
			}
			return countingConn{c, &requests}, nil
		}
		e.OnStartup()
		defer e.OnShutdown()
		if n := requests.Load(); n != leases {
			t.Fatalf("the first list asked %d leases, want %d", n, leases)
		}

		leader, err := c.Leader(cli)
		if err != nil {
			t.Fatal(err)
		}
		lcli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Endpoint(leader)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer lcli.Close()
		st, err := lcli.Status(ctx, c.Endpoint((leader+1)%3))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lcli.MoveLeader(ctx, st.Header.MemberId); err != nil {
			t.Fatal(err)
		}
		// A write in the new term reaches the watch, and with it the new term.
		rev := putAt(t, cli, "/lc/local/example/marker", `{"host":"10.9.6.2"}`)
		waitApplied(t, w, rev)
		wait.For(t, wait.Long, "the leases set from the new term", func() bool { return requests.Load() > leases })
		time.Sleep(2 * time.Second) // what else would come
		if n := requests.Load() - leases; n > 2 {
			t.Errorf("the leader change cost %d TimeToLive requests for %d leases, want 1", n, leases)
		}
		for _, i := range []int{0, leases / 2, leases - 1} {
			ttl, err := cli.TimeToLive(ctx, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			m := query(t, e, fmt.Sprintf("s%03d.example.local.", i), dns.TypeA)
			if len(m.Answer) != 1 {
				t.Fatalf("s%03d: %v", i, m)
			}
			if got := int64(m.Answer[0].Header().Ttl); got < ttl.TTL-1 || got > ttl.TTL+1 {
				t.Errorf("s%03d: TTL %d after the leader change, etcd says %d s are left", i, got, ttl.TTL)
			}
		}
	})
}

var keepaliveRun = flag.Duration("keepalive.run", 150*time.Second, "how long TestKeepaliveAccepted watches a quiet zone through each gRPC proxy")

// breakCountingConn counts the watch streams that end other than by the watcher's cancel.
type breakCountingConn struct {
	etcdConn
	breaks *atomic.Int64
	last   *atomic.Value // the last break's error
}

func (c breakCountingConn) WatchStream(ctx context.Context) (etcdserverpb.Watch_WatchClient, error) {
	s, err := c.etcdConn.WatchStream(ctx)
	return breakCountingStream{s, ctx, c}, err
}

type breakCountingStream struct {
	etcdserverpb.Watch_WatchClient
	ctx context.Context
	c   breakCountingConn
}

func (s breakCountingStream) Recv() (*etcdserverpb.WatchResponse, error) {
	resp, err := s.Watch_WatchClient.Recv()
	if err != nil && s.ctx.Err() == nil {
		s.c.breaks.Add(1)
		s.c.last.Store(err.Error())
	}
	return resp, err
}

// The keepalive pings of etcdsd's client are ones the servers users run accept: etcd
// 3.4's gRPC proxy enforces gRPC's default of one ping in 5 minutes, and answers more with
// GOAWAY too_many_pings, which breaks the watch streams of the connection. A quiet zone is
// watched through each release's proxy, side by side, for -keepalive.run (make test: 150 s,
// in which the pings of etcdsd's client before had the 3.4 proxy's GOAWAY; 10 minutes with
// -keepalive.run=10m): no watch stream may break.
func TestKeepaliveAccepted(t *testing.T) {
	perRelease(t, func(t *testing.T, bin, _ string) {
		t.Parallel()
		proxy, err := devetcd.StartProxy(bin, []string{testEtcd.Server().Endpoint})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Stop()
		root := fmt.Sprintf("/ka%d", time.Now().UnixNano())
		put(t, root+"/local/example/a", `{"host":"10.9.7.1"}`)
		e := &Etcdsd{etcdTarget: etcdTarget{endpoints: []string{proxy.Endpoint}}}
		var breaks atomic.Int64
		var last atomic.Value
		w := newWatcher(watchConfig{root: root, connect: func(ctx context.Context) (etcdConn, error) {
			c, err := connector(e.newClient, nil)(ctx)
			if err != nil {
				return nil, err
			}
			return breakCountingConn{c, &breaks, &last}, nil
		}})
		w.run()
		defer w.stop()
		wait.For(t, wait.Long, "the first list", func() bool { return w.snapshot() != nil })
		time.Sleep(*keepaliveRun)
		if n := breaks.Load(); n > 0 {
			t.Errorf("%d watch streams through the %s proxy broke in %v, the last with %v", n, bin, *keepaliveRun, last.Load())
		}
	})
}
