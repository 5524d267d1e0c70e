package register

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/wait"
	"github.com/etcdsd/etcdsd/skydns"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var testEtcd devetcd.Shared

func TestMain(m *testing.M) {
	os.Exit(devetcd.RunTests(m, &testEtcd))
}

func get(t *testing.T, key string) *clientv3.GetResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := testEtcd.Client().Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRegisterAndClose(t *testing.T) {
	r, err := Register(context.Background(), testEtcd.Client(), "web-a._web._tcp.Example.Local.",
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
	ttl, err := testEtcd.Client().TimeToLive(context.Background(), r.Lease())
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
		_, err := Register(context.Background(), testEtcd.Client(), tc.name, tc.svc, Options{Prefix: "/reg2"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: got %v, want an error with %q", tc.name, tc.svc, err, tc.want)
		}
	}
	resp, err := testEtcd.Client().Get(context.Background(), "/reg2", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 0 {
		t.Errorf("refused registrations wrote %v (%v)", resp.Kvs, err)
	}
}

// A lease lost behind the registration's back (here revoked, as when etcd was away for
// longer than the TTL) is replaced: the record comes back under a new lease.
func TestRegisterComesBackAfterLeaseLoss(t *testing.T) {
	var failures atomic.Int32
	r, err := Register(context.Background(), testEtcd.Client(), "db.example.local", skydns.Service{Host: "10.2.0.1"},
		Options{Prefix: "/reg3", TTL: 30 * time.Second, OnError: func(error) { failures.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first := r.Lease()
	if _, err := testEtcd.Client().Revoke(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "record back under a new lease", func() bool {
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
	r, err := Register(ctx, testEtcd.Client(), "cache.example.local", skydns.Service{Host: "10.3.0.1"},
		Options{Prefix: "/reg4", TTL: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	wait.For(t, 10*time.Second, "record gone after the context ended", func() bool { return len(get(t, r.Key()).Kvs) == 0 })
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

// A failing check withdraws the record and keeps its lease; a passing one puts it back.
// A check that fails from the start keeps the record out until it passes.
func TestCheckWithdrawsAndRestores(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	var changes atomic.Int32
	r, err := Register(context.Background(), testEtcd.Client(), "api.example.local.", skydns.Service{Host: "10.1.5.1"}, Options{
		Prefix: "/regcheck", TTL: 10 * time.Second,
		Check: HTTPCheck(srv.URL), CheckInterval: 50 * time.Millisecond, CheckFailures: 2,
		OnHealth: func(bool, error) { changes.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	present := func() bool { return len(get(t, r.Key()).Kvs) == 1 }
	state := func() Health {
		t.Helper()
		resp := get(t, HealthKey(r.Key()))
		if len(resp.Kvs) != 1 {
			t.Fatalf("no check state at %s", HealthKey(r.Key()))
		}
		if clientv3.LeaseID(resp.Kvs[0].Lease) != r.Lease() {
			t.Errorf("check state under lease %x, registration holds %x", resp.Kvs[0].Lease, r.Lease())
		}
		var h Health
		if err := json.Unmarshal(resp.Kvs[0].Value, &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if present() || state().Passing || !strings.Contains(state().Output, "500") {
		t.Fatalf("record put before its check passed, or state %+v", state())
	}

	failing.Store(false)
	wait.For(t, 10*time.Second, "record put once the check passes", present)
	lease := r.Lease()
	if h := state(); !h.Passing || h.Output != "" {
		t.Errorf("state %+v after the check passed", h)
	}

	failing.Store(true)
	wait.For(t, 10*time.Second, "record withdrawn after two failures", func() bool { return !present() })
	if r.Lease() != lease {
		t.Errorf("lease changed from %x to %x on withdrawal", lease, r.Lease())
	}
	if ttl, err := testEtcd.Client().TimeToLive(context.Background(), lease); err != nil || ttl.TTL <= 0 {
		t.Errorf("lease %x not kept alive while withdrawn: %v, %v", lease, ttl, err)
	}
	if h := r.Health(); h.Passing {
		t.Errorf("Health() %+v while failing", h)
	}

	failing.Store(false)
	wait.For(t, 10*time.Second, "record back after the check passes again", present)
	if n := changes.Load(); n != 3 {
		t.Errorf("OnHealth told of %d changes, want 3 (pass, fail, pass)", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if present() || len(get(t, HealthKey(r.Key())).Kvs) != 0 {
		t.Error("record or check state left after Close")
	}
}

// TCP and exec checks tell a live service from a dead one; a check past its timeout fails.
func TestChecks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx := context.Background()
	if err := runCheck(ctx, TCPCheck(addr), time.Second); err != nil {
		t.Errorf("TCP check of a listening port: %v", err)
	}
	ln.Close()
	if err := runCheck(ctx, TCPCheck(addr), time.Second); err == nil {
		t.Error("TCP check of a closed port passed")
	}
	if err := runCheck(ctx, ExecCheck("exit 0"), time.Second); err != nil {
		t.Errorf("exec check of exit 0: %v", err)
	}
	if err := runCheck(ctx, ExecCheck("echo broken >&2; exit 3"), time.Second); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("exec check of exit 3: %v, want the failure with its output", err)
	}
	if err := runCheck(ctx, ExecCheck("sleep 5"), 100*time.Millisecond); !errors.Is(err, errCheckTimeout) {
		t.Errorf("exec check past its timeout: %v, want a timeout", err)
	}
}

// Fewer failures in a row than CheckFailures leave the record where it is.
func TestFailuresBelowThresholdKeepRecord(t *testing.T) {
	var runs atomic.Int32
	flaky := func(context.Context) error {
		if runs.Add(1)%3 == 0 { // every third run fails, never two in a row
			return errors.New("flaky")
		}
		return nil
	}
	var withdrawn atomic.Bool
	r, err := Register(context.Background(), testEtcd.Client(), "flaky.example.local.", skydns.Service{Host: "10.1.5.2"}, Options{
		Prefix: "/regflaky", Check: flaky, CheckInterval: 20 * time.Millisecond, CheckFailures: 2,
		OnHealth: func(passing bool, _ error) { withdrawn.Store(withdrawn.Load() || !passing) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wait.For(t, 10*time.Second, "ten runs of the check", func() bool { return runs.Load() >= 10 })
	if withdrawn.Load() || len(get(t, r.Key()).Kvs) != 1 {
		t.Error("record withdrawn after single failures, below CheckFailures")
	}
}

// An exec check passes when its command exits 0, even one that leaves a process in the
// background, and no process of it is left after.
func TestExecCheckLeavesNoProcess(t *testing.T) {
	check := ExecCheck("sleep 31.25 & echo started; exit 0")
	if err := runCheck(context.Background(), check, 5*time.Second); err != nil {
		t.Fatalf("a command that exits 0 failed its check: %v", err)
	}
	wait.For(t, 5*time.Second, "the background process killed", func() bool {
		return exec.Command("pgrep", "-f", "sleep 31.25").Run() != nil
	})
}

// A failing check withdraws only the record its registration put: a record another
// registration (or a person) wrote since, or before, stays.
func TestWithdrawKeepsOthersRecord(t *testing.T) {
	ctx := context.Background()
	const key = "/regothers/local/example/shared"
	if _, err := testEtcd.Client().Put(ctx, key, `{"host":"10.1.6.9"}`); err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	failing.Store(true)
	check := func(context.Context) error {
		if failing.Load() {
			return errors.New("down")
		}
		return nil
	}
	r, err := Register(ctx, testEtcd.Client(), "shared.example.local.", skydns.Service{Host: "10.1.6.1"}, Options{
		Prefix: "/regothers", Check: check, CheckInterval: 20 * time.Millisecond, CheckFailures: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := string(get(t, key).Kvs[0].Value); got != `{"host":"10.1.6.9"}` {
		t.Fatalf("a registration whose check failed from the start changed the record there to %s", got)
	}

	failing.Store(false)
	wait.For(t, 10*time.Second, "the record put once the check passes", func() bool {
		kvs := get(t, key).Kvs
		return len(kvs) == 1 && clientv3.LeaseID(kvs[0].Lease) == r.Lease()
	})
	// Another registration takes the name over; then this one's check fails.
	other, err := testEtcd.Client().Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testEtcd.Client().Put(ctx, key, `{"host":"10.1.6.2"}`, clientv3.WithLease(other.ID)); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	wait.For(t, 10*time.Second, "the check state failing", func() bool { return !r.Health().Passing })
	time.Sleep(100 * time.Millisecond) // a few more runs of the check
	if kvs := get(t, key).Kvs; len(kvs) != 1 || string(kvs[0].Value) != `{"host":"10.1.6.2"}` {
		t.Errorf("a failing check withdrew another registration's record: %v", kvs)
	}
}
