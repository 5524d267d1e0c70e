package etcdsd

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/etcdsd/etcdsd/internal/devetcd"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// One real etcd serves every test of the package that needs one, started by the first of
// them (the Corefile parse tests run without); each test works under its own prefix.
var testEtcd devetcd.Shared

func TestMain(m *testing.M) {
	os.Exit(devetcd.RunTests(m, &testEtcd))
}

// testConnect connects a watcher to the test etcd.
var testConnect = connector(func(context.Context) (*clientv3.Client, error) { return testEtcd.Server().Client() }, nil)

// startPlugin parses one etcdsd stanza (its endpoint is added), starts it like CoreDNS
// would and waits for its first complete list. Shutdown runs at the end of the test.
func startPlugin(t *testing.T, stanza string) *Etcdsd {
	t.Helper()
	return startPluginAt(t, stanza, time.Now)
}

// startPluginAt is startPlugin with the plugin's clock (staleness, readiness, leased TTLs)
// reading now.
func startPluginAt(t *testing.T, stanza string, now func() time.Time) *Etcdsd {
	t.Helper()
	e := parsePlugin(t, stanza)
	e.Now = now // the watchers' clock too
	if err := e.OnStartup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.OnShutdown() })
	if !e.Ready() {
		t.Fatalf("plugin not ready after OnStartup")
	}
	return e
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// parsePlugin parses one stanza, pointing it at the test etcd.
func parsePlugin(t *testing.T, stanza string) *Etcdsd {
	t.Helper()
	open := strings.Index(stanza, "{")
	if open < 0 {
		stanza += " {\n}"
		open = strings.Index(stanza, "{")
	}
	stanza = stanza[:open+1] + "\n endpoint " + testEtcd.Server().Endpoint + "\n" + stanza[open+1:]
	stanzas, err := parse(caddy.NewTestController("dns", stanza))
	if err != nil {
		t.Fatalf("parsing %q: %v", stanza, err)
	}
	return stanzas[0]
}

func put(t *testing.T, key, value string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := testEtcd.Client().Put(ctx, key, value, opts...)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

func del(t *testing.T, key string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := testEtcd.Client().Delete(ctx, key)
	if err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
	return resp.Header.Revision
}

// putAll puts "KEY VALUE" pairs and returns the revision of the last put.
func putAll(t *testing.T, kvs [][2]string) int64 {
	t.Helper()
	var rev int64
	for _, kv := range kvs {
		rev = put(t, kv[0], kv[1])
	}
	return rev
}

// waitRevision waits until the index of the plugin's (first) zone has applied rev.
func waitRevision(t *testing.T, e *Etcdsd, rev int64) {
	t.Helper()
	waitApplied(t, e.watchers[0], rev)
}

// waitApplied waits until w's index has applied rev.
func waitApplied(t *testing.T, w *watcher, rev int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s := w.snapshot(); s != nil && s.Rev() >= rev {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("index did not reach revision %d", rev)
}
