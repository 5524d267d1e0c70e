// Package register keeps a service's record in etcd for as long as the service runs. The
// record is put under a lease that is kept alive, so when the process dies its record
// leaves etcd, and so etcdsd's answers, within the lease's TTL. etcdsdctl register uses
// it; a service can import it to register itself the same way.
package register

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/etcdsd/etcdsd/skydns"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults of Options.
const (
	DefaultPrefix = "/skydns"
	DefaultTTL    = 10 * time.Second
)

// opTimeout bounds each etcd request, so that an unreachable etcd is retried rather than
// waited on forever.
const opTimeout = 5 * time.Second

// Options tune a registration; the zero value uses the defaults.
type Options struct {
	// Prefix is the etcd path the records live under, as the plugin's "path" option.
	Prefix string
	// TTL is the lease's time to live: how long the record outlives a process that dies
	// without Close. etcd rounds it up to whole seconds and to its minimum lease TTL.
	TTL time.Duration
	// OnError is told of every failure to keep the record (a lost lease, a failed
	// re-registration); the registration keeps trying. Nil ignores them.
	OnError func(error)
}

// Registration is one record kept alive in etcd.
type Registration struct {
	cli     *clientv3.Client
	key     string
	value   string
	ttl     int64
	onError func(error)

	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	lease     clientv3.LeaseID
	revokeErr error
}

// Register puts svc at the key of the DNS name under a new lease and keeps the lease alive
// in the background until ctx ends or Close is called; both revoke the lease, so the
// record goes at once. If the lease is lost (etcd unreachable for longer than the TTL),
// the record is put again under a new lease as soon as etcd answers.
//
// A svc without a ttl gets the lease's, so that resolvers do not cache the record much
// longer than it can outlive its process. Register fails, and writes nothing, when the name
// or the value is one etcdsd would not serve, or when the first put fails.
func Register(ctx context.Context, cli *clientv3.Client, name string, svc skydns.Service, opt Options) (*Registration, error) {
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if opt.TTL <= 0 {
		opt.TTL = DefaultTTL
	}
	key, err := skydns.Key(opt.Prefix, name)
	if err != nil {
		return nil, err
	}
	if err := svc.Check(); err != nil {
		return nil, fmt.Errorf("record for %s: %w", name, err)
	}
	ttl := int64((opt.TTL + time.Second - 1) / time.Second)
	if svc.TTL == 0 {
		svc.TTL = uint32(ttl) // #nosec G115 -- a lease TTL fits
	}
	value, err := json.Marshal(svc)
	if err != nil {
		return nil, err
	}
	r := &Registration{cli: cli, key: key, value: string(value), ttl: ttl, onError: opt.OnError, done: make(chan struct{})}
	if err := r.put(ctx); err != nil {
		return nil, err
	}
	ctx, r.cancel = context.WithCancel(ctx)
	go r.keep(ctx)
	return r, nil
}

// Key returns the etcd key of the record.
func (r *Registration) Key() string { return r.key }

// Lease returns the lease the record is held under now.
func (r *Registration) Lease() clientv3.LeaseID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease
}

// Close stops keeping the record and revokes its lease, which deletes the record.
func (r *Registration) Close() error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revokeErr
}

// put grants a new lease and puts the record under it.
func (r *Registration) put(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	g, err := r.cli.Grant(ctx, r.ttl)
	if err != nil {
		return fmt.Errorf("granting a lease for %s: %w", r.key, err)
	}
	if _, err := r.cli.Put(ctx, r.key, r.value, clientv3.WithLease(g.ID)); err != nil {
		r.cli.Revoke(ctx, g.ID) // best effort: it would expire anyway
		return fmt.Errorf("putting %s: %w", r.key, err)
	}
	r.mu.Lock()
	r.lease = g.ID
	r.mu.Unlock()
	return nil
}

var errLeaseLost = errors.New("lease expired or revoked")

// keep keeps the lease alive and puts the record again under a new lease when the old one
// is lost, until ctx ends; then it revokes the lease.
func (r *Registration) keep(ctx context.Context) {
	defer close(r.done)
	for {
		lease := r.Lease()
		// The channel closes when the lease is gone or was not renewed within its TTL.
		ka, err := r.cli.KeepAlive(ctx, lease)
		if err == nil {
			for range ka {
			}
			err = errLeaseLost
		}
		if ctx.Err() != nil {
			break
		}
		r.fail(fmt.Errorf("keeping %s alive under lease %x: %w", r.key, int64(lease), err))
		if !r.putAgain(ctx) {
			break
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := r.cli.Revoke(rctx, r.Lease())
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		err = nil // lost and not replaced: the record is gone already
	}
	r.mu.Lock()
	r.revokeErr = err
	r.mu.Unlock()
}

// putAgain retries put with a capped backoff until it succeeds (true) or ctx ends.
func (r *Registration) putAgain(ctx context.Context) bool {
	wait := 100 * time.Millisecond
	for {
		err := r.put(ctx)
		if err == nil {
			return true
		}
		r.fail(err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Duration(r.ttl)*time.Second/3)
	}
}

func (r *Registration) fail(err error) {
	if r.onError != nil {
		r.onError(err)
	}
}
