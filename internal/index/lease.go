package index

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease is what the index knows about one etcd lease: when it expires. Its expiry is
// learned with one TimeToLive call when the lease is first seen, and again, never on the
// query path, once a recheck time has come: a lease kept alive moves its expiry on, which
// no watch event tells.
type Lease struct {
	id      clientv3.LeaseID
	granted atomic.Int64 // seconds; the lease's granted TTL
	expiry  atomic.Int64 // unix nanoseconds; 0 while unknown
	recheck atomic.Int64 // unix nanoseconds: when to ask etcd again (ResolveLeases)
	refs    int          // keys in the writer's index holding this lease; guarded by leaseTable.mu
}

// remaining returns the whole seconds left on the lease at now, as etcd's TimeToLive
// reports them, or 0 when the expiry is unknown or passed.
func (l *Lease) remaining(now time.Time) int64 {
	exp := l.expiry.Load()
	if exp == 0 {
		return 0
	}
	left := (exp - now.UnixNano()) / int64(time.Second)
	return max(left, 0)
}

// tick returns when remaining(now) next changes, in unix nanoseconds: an answer that
// holds the lease's TTL is current until then.
func (l *Lease) tick(now time.Time) int64 {
	exp, at := l.expiry.Load(), now.UnixNano()
	left := (exp - at) / int64(time.Second)
	if exp == 0 || left <= 0 {
		return at + int64(time.Second) // unknown or passed: ask the clock again soon
	}
	return exp - left*int64(time.Second)
}

// leaseTable tracks the leases held by the keys in the index, counted by reference so
// a lease is forgotten when its last key goes.
type leaseTable struct {
	mu   sync.Mutex
	byID map[clientv3.LeaseID]*Lease
}

func newLeaseTable() *leaseTable {
	return &leaseTable{byID: make(map[clientv3.LeaseID]*Lease)}
}

// acquire returns the lease for id, adding one reference; fresh is true when the lease
// was not known before and still needs resolving.
func (t *leaseTable) acquire(id clientv3.LeaseID) (l *Lease, fresh bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.byID[id]
	if !ok {
		l = &Lease{id: id}
		t.byID[id] = l
	}
	l.refs++
	return l, !ok
}

func (t *leaseTable) release(l *Lease) {
	if l == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l.refs--
	if l.refs <= 0 {
		delete(t.byID, l.id)
	}
}

// due returns the leases whose expiry is unknown or whose recheck time has come at now.
func (t *leaseTable) due(now time.Time) []*Lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Lease
	at := now.UnixNano()
	for _, l := range t.byID {
		if l.expiry.Load() == 0 || at >= l.recheck.Load() {
			out = append(out, l)
		}
	}
	return out
}

func (t *leaseTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// electionTimeout is etcd's default --election-timeout, by which a new leader extends
// every lease beyond its TTL; promote assumes it when etcd does not answer.
const electionTimeout = time.Second

// promote sets every lease's expiry as a new leader has just set it. etcd's lessor
// extends every lease to its granted TTL plus the election timeout when its member
// becomes leader (lessor.Promote), so after every leader change and every restart of
// etcd. One lease is asked for its TTL to learn when that was; every other lease follows
// from its own granted TTL: one request for the whole table. Asking each lease again
// cost etcd replicas × leases requests at the moment it is least able to take them
// (BENCHMARKS.md). The leases keep their recheck times, so that their rechecks stay
// spread. Of more than 1,000 leases expiring within a second of each other, etcd extends
// some by up to a few seconds more (its leaseRevokeRate): their recheck finds it.
func (t *leaseTable) promote(ctx context.Context, cli LeaseReader, now func() time.Time) {
	t.mu.Lock()
	var sample *Lease
	for _, l := range t.byID {
		if l.granted.Load() > 0 {
			sample = l
			break
		}
	}
	t.mu.Unlock()
	if sample == nil {
		return
	}
	// The leader's promotion, less the election timeout: when a lease of granted TTL g
	// now expires at base + g.
	base := now().Add(electionTimeout).UnixNano()
	if ResolveLeases(ctx, cli, []*Lease{sample}, now) == 1 {
		base = sample.expiry.Load() - sample.granted.Load()*int64(time.Second)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.byID {
		if g := l.granted.Load(); g > 0 && l != sample {
			l.expiry.Store(base + g*int64(time.Second))
		}
	}
}

// LeaseReader is the part of an etcd client that ResolveLeases uses.
type LeaseReader interface {
	TimeToLive(ctx context.Context, id clientv3.LeaseID, opts ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error)
}

// ResolveLeases asks etcd for the remaining TTL of each lease, a few at a time, notes its
// expiry on the clock now, and sets when to ask again: after a random 40-60% of the
// granted TTL, so that rechecks of leases first seen together (at a list, say) do not
// come together. It returns how many leases it resolved. A lease that cannot be resolved
// keeps an unknown expiry and is retried by the refresh loop.
func ResolveLeases(ctx context.Context, cli LeaseReader, leases []*Lease, now func() time.Time) int {
	const parallel = 64
	sem := make(chan struct{}, parallel)
	var (
		wg       sync.WaitGroup
		resolved atomic.Int64
	)
	for _, l := range leases {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, leaseTimeout)
			defer cancel()
			asked := now()
			resp, err := cli.TimeToLive(rctx, l.id)
			if err != nil || resp.TTL <= 0 {
				return
			}
			granted := time.Duration(resp.GrantedTTL) * time.Second
			l.granted.Store(resp.GrantedTTL)
			// etcd truncates the remaining TTL to whole seconds: the lease ends within the
			// second after asked+TTL, so take the middle of it.
			l.expiry.Store(asked.Add(time.Duration(resp.TTL)*time.Second + time.Second/2).UnixNano())
			l.recheck.Store(asked.Add(granted*2/5 + rand.N(granted/5+1)).UnixNano())
			resolved.Add(1)
		})
	}
	wg.Wait()
	return int(resolved.Load())
}

const leaseTimeout = 2 * time.Second
