package etcdsd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/etcdsd/etcdsd/internal/wait"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// lossyConn loses every event of a revision but the first, as the watcher did before it
// had a builder (issue 10): what the self-check must find.
type lossyConn struct{ etcdConn }

func (c lossyConn) WatchStream(ctx context.Context) (etcdserverpb.Watch_WatchClient, error) {
	s, err := c.etcdConn.WatchStream(ctx)
	return lossyStream{s}, err
}

type lossyStream struct{ etcdserverpb.Watch_WatchClient }

func (s lossyStream) Recv() (*etcdserverpb.WatchResponse, error) {
	resp, err := s.Watch_WatchClient.Recv()
	if err != nil {
		return nil, err
	}
	var kept []*mvccpb.Event
	for i, ev := range resp.Events {
		if i == 0 || ev.Kv.ModRevision != resp.Events[i-1].Kv.ModRevision {
			kept = append(kept, ev)
		}
	}
	resp.Events = kept
	return resp, nil
}

func lossyConnect(ctx context.Context) (etcdConn, error) {
	c, err := testConnect(ctx)
	if err != nil {
		return nil, err
	}
	return lossyConn{c}, nil
}

func txnPuts(t *testing.T, prefix string, n int) int64 {
	t.Helper()
	var ops []clientv3.Op
	for i := range n {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/k%d", prefix, i), fmt.Sprintf(`{"host":"10.9.9.%d"}`, i+1)))
	}
	resp, err := testEtcd.Client().Txn(context.Background()).Then(ops...).Commit()
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// checks returns how many self-checks have run.
func checks(t *testing.T) uint64 {
	t.Helper()
	var m dto.Metric
	if err := verifyDuration.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// With the bug of issue 10 put back, the self-check finds the divergence it makes at its
// next run, counts it and repairs the index with a complete list.
func TestSelfCheckFindsLostEvents(t *testing.T) {
	const root = "/vf/local/example"
	put(t, root+"/a", `{"host":"10.9.8.1"}`)
	w := newWatcher(watchConfig{root: root, connect: lossyConnect, verifyEvery: 500 * time.Millisecond})
	w.run()
	defer w.stop()
	wait.For(t, wait.Long, "the first list", func() bool { return w.snapshot() != nil })
	divergences := testutil.ToFloat64(divergencesTotal.WithLabelValues(root))
	lists := testutil.ToFloat64(listsTotal.WithLabelValues("divergence"))

	before := checks(t)
	rev := txnPuts(t, root, 10)
	wait.For(t, wait.Long, "the divergence found", func() bool { return testutil.ToFloat64(divergencesTotal.WithLabelValues(root)) > divergences })
	// The check that found it is the next one, or the one after when a check was
	// already reading when the transaction came.
	if n := checks(t) - before; n > 2 {
		t.Errorf("the divergence was found by the %dth check after the write", n)
	}
	wait.For(t, wait.Long, "the index repaired", func() bool {
		s := w.snapshot()
		return s.Len() == 11 && s.Rev() >= rev
	})
	if got := testutil.ToFloat64(divergencesTotal.WithLabelValues(root)); got <= divergences {
		t.Errorf("divergences_total stayed at %v", got)
	}
	if got := testutil.ToFloat64(listsTotal.WithLabelValues("divergence")); got <= lists {
		t.Errorf("lists_total{reason=divergence} stayed at %v", got)
	}
}

// A check whose index revision etcd has compacted away reads the current revision, and
// tells a divergence from events still on their way only by waiting for them.
func TestCompareAfterCompaction(t *testing.T) {
	const root = "/vc/local/example"
	put(t, root+"/a", `{"host":"10.9.7.1"}`)
	w := newWatcher(watchConfig{root: root})
	c := lend(testEtcd.Client())
	ctx := context.Background()
	if err := w.list(ctx, c, "start"); err != nil {
		t.Fatal(err)
	}
	d, err := w.compare(ctx, c, w.snapshot())
	if err != nil || d.count != 0 || !d.exact {
		t.Fatalf("a fresh list: %+v, %v; want no difference, read at its revision", d, err)
	}

	// b comes after the index's revision, which etcd compacts.
	put(t, root+"/b", `{"host":"10.9.7.2"}`)
	rev := put(t, "/vc-elsewhere", "x")
	if _, err := testEtcd.Client().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	d, err = w.compare(ctx, c, w.snapshot())
	if err != nil || d.count != 1 || d.exact || len(d.keys) != 1 || d.keys[0] != "+"+root+"/b" {
		t.Fatalf("got %+v, %v; want +b found at the current revision", d, err)
	}
}

// A healthy index, through transactions, prefix deletes, writes elsewhere and compaction,
// is never found divergent.
func TestSelfCheckQuietOnAHealthyIndex(t *testing.T) {
	const root = "/vq/local/example"
	w := newWatcher(watchConfig{root: root, connect: testConnect, verifyEvery: 50 * time.Millisecond})
	w.run()
	defer w.stop()
	wait.For(t, wait.Long, "the first list", func() bool { return w.snapshot() != nil })
	divergences := testutil.ToFloat64(divergencesTotal.WithLabelValues(root))
	ctx := context.Background()
	for i := range 5 {
		waitApplied(t, w, txnPuts(t, fmt.Sprintf("%s/t%d", root, i), 20))
		if _, err := testEtcd.Client().Delete(ctx, fmt.Sprintf("%s/t%d/", root, i), clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		rev := put(t, "/vq-elsewhere", "x")
		if _, err := testEtcd.Client().Compact(ctx, rev); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // a few checks
	}
	if got := testutil.ToFloat64(divergencesTotal.WithLabelValues(root)); got != divergences {
		t.Errorf("divergences_total went from %v to %v on a healthy index", divergences, got)
	}
}
