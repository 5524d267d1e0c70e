package index

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease is what the index knows about one etcd lease: when it expires. Its expiry is
// learned with one TimeToLive call when the lease is first seen, and again only when a
// kept-alive lease has outlived half of what we knew, never on the query path.
type Lease struct {
	id      clientv3.LeaseID
	granted atomic.Int64 // seconds; the lease's granted TTL
	expiry  atomic.Int64 // unix nanoseconds; 0 while unknown
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

// due returns the leases whose expiry is unknown or less than half their granted TTL away,
// or, with all, every lease.
func (t *leaseTable) due(now time.Time, all bool) []*Lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Lease
	for _, l := range t.byID {
		if all || l.expiry.Load() == 0 || 2*l.remaining(now) < l.granted.Load() {
			out = append(out, l)
		}
	}
	return out
}

// LeaseReader is the part of an etcd client that ResolveLeases uses.
type LeaseReader interface {
	TimeToLive(ctx context.Context, id clientv3.LeaseID, opts ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error)
}

// ResolveLeases asks etcd for the remaining TTL of each lease, a few at a time, and notes
// its expiry on the clock now. A lease that cannot be resolved keeps an unknown expiry
// and is retried by the refresh loop.
func ResolveLeases(ctx context.Context, cli LeaseReader, leases []*Lease, now func() time.Time) {
	const parallel = 64
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, l := range leases {
		sem <- struct{}{}
		wg.Add(1)
		go func(l *Lease) {
			defer func() { <-sem; wg.Done() }()
			rctx, cancel := context.WithTimeout(ctx, leaseTimeout)
			defer cancel()
			asked := now()
			resp, err := cli.TimeToLive(rctx, l.id)
			if err != nil || resp.TTL <= 0 {
				return
			}
			l.granted.Store(resp.GrantedTTL)
			// etcd truncates the remaining TTL to whole seconds: the lease ends within the
			// second after asked+TTL, so take the middle of it.
			l.expiry.Store(asked.Add(time.Duration(resp.TTL)*time.Second + time.Second/2).UnixNano())
		}(l)
	}
	wg.Wait()
}

const leaseTimeout = 2 * time.Second
