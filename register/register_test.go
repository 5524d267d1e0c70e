package register

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/skydns"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	testEtcd   *devetcd.Server
	testClient *clientv3.Client
)

func TestMain(m *testing.M) {
	os.Exit(devetcd.RunTests(m, &testEtcd, &testClient))
}

func get(t *testing.T, key string) *clientv3.GetResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := testClient.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitFor polls cond for up to d; the bound only ends a test that would otherwise hang.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

func TestRegisterAndClose(t *testing.T) {
	r, err := Register(context.Background(), testClient, "web-a._web._tcp.Example.Local.",
		skydns.Service{Host: "10.1.0.1", Port: 80}, Options{Prefix: "/reg1", TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const key = "/reg1/local/example/_tcp/_web/web-a"
	if r.Key() != key {
		t.Fatalf("key %q, want %q", r.Key(), key)
	}
	resp := get(t, key)
	if len(resp.Kvs) != 1 {
		t.Fatalf("want the record at %s, got %v", key, resp.Kvs)
	}
	kv := resp.Kvs[0]
	var svc skydns.Service
	if err := json.Unmarshal(kv.Value, &svc); err != nil {
		t.Fatal(err)
	}
	// The record's own TTL is the lease's, so that caches do not outlive the lease by much.
	if want := (skydns.Service{Host: "10.1.0.1", Port: 80, TTL: 5}); svc != want {
		t.Errorf("value %+v, want %+v", svc, want)
	}
	if clientv3.LeaseID(kv.Lease) != r.Lease() || kv.Lease == 0 {
		t.Errorf("record under lease %x, registration holds %x", kv.Lease, r.Lease())
	}
	ttl, err := testClient.TimeToLive(context.Background(), r.Lease())
	if err != nil || ttl.GrantedTTL != 5 {
		t.Errorf("lease granted TTL %d (%v), want 5", ttl.GrantedTTL, err)
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(get(t, key).Kvs); n != 0 {
		t.Errorf("record still there after Close")
	}
}

func TestRegisterRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  skydns.Service
		want string
	}{
		{"x.example.local", skydns.Service{Host: "999.1.1.1"}, skydns.ReasonInvalidHost},
		{"x.example.local", skydns.Service{Host: "10.0.0.1", Port: 70000}, skydns.ReasonOutOfRange},
		{"*.example.local", skydns.Service{Host: "10.0.0.1"}, "cannot be registered"},
		{"a..b", skydns.Service{Host: "10.0.0.1"}, "not a DNS name"},
	} {
		_, err := Register(context.Background(), testClient, tc.name, tc.svc, Options{Prefix: "/reg2"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: got %v, want an error with %q", tc.name, tc.svc, err, tc.want)
		}
	}
	resp, err := testClient.Get(context.Background(), "/reg2", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 0 {
		t.Errorf("refused registrations wrote %v (%v)", resp.Kvs, err)
	}
}

// A lease lost behind the registration's back (here revoked, as when etcd was away for
// longer than the TTL) is replaced: the record comes back under a new lease.
func TestRegisterComesBackAfterLeaseLoss(t *testing.T) {
	var failures atomic.Int32
	r, err := Register(context.Background(), testClient, "db.example.local", skydns.Service{Host: "10.2.0.1"},
		Options{Prefix: "/reg3", TTL: 30 * time.Second, OnError: func(error) { failures.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first := r.Lease()
	if _, err := testClient.Revoke(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "record back under a new lease", func() bool {
		resp := get(t, r.Key())
		return len(resp.Kvs) == 1 && resp.Kvs[0].Lease != int64(first) && clientv3.LeaseID(resp.Kvs[0].Lease) == r.Lease()
	})
	if failures.Load() == 0 {
		t.Errorf("the lost lease was not reported to OnError")
	}
}

// Ending the registration's context revokes the lease: with a 60 s TTL, only the revoke
// can remove the record within the wait.
func TestRegisterContextEndRevokes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, err := Register(ctx, testClient, "cache.example.local", skydns.Service{Host: "10.3.0.1"},
		Options{Prefix: "/reg4", TTL: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitFor(t, 10*time.Second, "record gone after the context ended", func() bool { return len(get(t, r.Key()).Kvs) == 0 })
	if err := r.Close(); err != nil {
		t.Errorf("Close after the context ended: %v", err)
	}
}

// A service that imports this package gets the etcd client and the value checks, not a
// DNS server: nothing of CoreDNS or caddy is linked in.
func TestNoCoreDNSInTheBuild(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/coredns/") {
			t.Errorf("register depends on %s", pkg)
		}
	}
}
