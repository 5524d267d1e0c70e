package index

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// lessor answers TimeToLive as etcd's lessor would for leases of one granted TTL, each
// expiring at its own time on the clock now, and counts the requests.
type lessor struct {
	mu      sync.Mutex
	now     *time.Time
	granted int64
	expiry  map[clientv3.LeaseID]time.Time
	asked   atomic.Int64
}

func (l *lessor) TimeToLive(_ context.Context, id clientv3.LeaseID, _ ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	l.asked.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	left := int64(l.expiry[id].Sub(*l.now).Seconds()) // etcd truncates
	return &clientv3.LeaseTimeToLiveResponse{ID: id, TTL: left, GrantedTTL: l.granted}, nil
}

// promote is what etcd's lessor.Promote does when its member becomes leader: every lease
// expires its granted TTL and the election timeout from now.
func (l *lessor) promote(extend time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.expiry {
		l.expiry[id] = l.now.Add(time.Duration(l.granted)*time.Second + extend)
	}
}

// leasedBuilder returns a builder holding n keys, each on a lease of its own that etcd
// granted ttl seconds and that has between half of it and all of it left, every lease
// resolved at now.
func leasedBuilder(t *testing.T, n int, ttl int64, now *time.Time) (*Builder, *lessor) {
	t.Helper()
	etcd := &lessor{now: now, granted: ttl, expiry: map[clientv3.LeaseID]time.Time{}}
	b := NewBuilder(bRoot)
	var events []*clientv3.Event
	for i := range n {
		id := clientv3.LeaseID(i + 1)
		etcd.expiry[id] = now.Add(time.Duration(ttl)*time.Second - time.Duration(i%int(ttl/2))*time.Second)
		events = append(events, leasedPut("/l/"+string(rune('a'+i%26))+string(rune('a'+i/26)), 10, int64(id)))
	}
	l := listAt(b, 9)
	l.done([]Span{ZoneSpan(bRoot)})
	ch := b.Apply(0, events)
	clock := func() time.Time { return *now }
	if got := ResolveLeases(context.Background(), etcd, ch.Fresh, clock); got != n {
		t.Fatalf("resolved %d leases, want %d", got, n)
	}
	return b, etcd
}

// remaining returns what the index says is left of every lease at now, by lease.
func remaining(b *Builder, now time.Time) map[clientv3.LeaseID]int64 {
	out := map[clientv3.LeaseID]int64{}
	b.leases.mu.Lock()
	defer b.leases.mu.Unlock()
	for id, l := range b.leases.byID {
		out[id] = l.remaining(now)
	}
	return out
}

// A new leader extends every lease (etcd's lessor.Promote): the index learns that from
// one TimeToLive whatever the number of leases, and its TTLs are then etcd's to the second.
func TestPromoteAsksOneLease(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b, etcd := leasedBuilder(t, 1000, 60, &now)
	now = now.Add(7 * time.Second)
	etcd.promote(time.Second) // etcd's default election timeout
	now = now.Add(200 * time.Millisecond)
	asked := etcd.asked.Load()
	b.PromoteLeases(context.Background(), etcd, func() time.Time { return now })
	if n := etcd.asked.Load() - asked; n != 1 {
		t.Errorf("a new term cost %d TimeToLive requests for 1,000 leases, want 1", n)
	}
	for _, later := range []time.Duration{0, 13 * time.Second, 40 * time.Second} {
		at := now.Add(later)
		for id, left := range remaining(b, at) {
			want := int64(etcd.expiry[id].Sub(at).Seconds())
			if d := left - want; d < -1 || d > 1 {
				t.Fatalf("%v after the new term, lease %d has %d s left in the index, etcd says %d", later, id, left, want)
			}
		}
	}
}

// A lease nobody keeps alive is asked for again once or twice in the rest of its life, not
// every second of its second half; leases first seen together are asked again spread over
// a fifth of their TTL, not together.
func TestLeaseRechecksAreFewAndSpread(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b, etcd := leasedBuilder(t, 500, 60, &now)
	asked := etcd.asked.Load()
	clock := func() time.Time { return now }
	busiest := int64(0)
	for range 30 { // every lease lives longer
		now = now.Add(time.Second)
		before := etcd.asked.Load()
		ResolveLeases(context.Background(), etcd, b.DueLeases(now), clock)
		busiest = max(busiest, etcd.asked.Load()-before)
	}
	perLease := float64(etcd.asked.Load()-asked) / 500
	if perLease > 2 {
		t.Errorf("leases were asked %.1f times each over half a TTL, want at most 2", perLease)
	}
	if busiest > 500/3 {
		t.Errorf("%d of 500 leases were asked in one second: rechecks are not spread", busiest)
	}
}
