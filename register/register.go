// Package register keeps a service's record in etcd for as long as the service runs. The
// record is put under a lease that is kept alive, so when the process dies its record
// leaves etcd, and so etcdsd's answers, within the lease's TTL. etcdsdctl register uses
// it; a service can import it to register itself the same way.
package register

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/etcdsd/etcdsd/internal/retrypolicy"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/cenkalti/backoff/v5"
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

	// Check, when set, is run every CheckInterval, each run bounded by CheckTimeout. The
	// record is withdrawn from etcd (its lease kept alive) after CheckFailures failures in
	// a row and put back after one pass; before the first pass it is not put. Its state is
	// kept at HealthKey of the record's key, under the same lease, for etcdsdctl ls.
	Check         Check
	CheckInterval time.Duration // DefaultCheckInterval when 0
	CheckTimeout  time.Duration // DefaultCheckTimeout when 0
	CheckFailures int           // DefaultCheckFailures when 0
	// OnHealth is told of every change of the check's state, with the failure that made it
	// fail. Nil ignores them.
	OnHealth func(passing bool, err error)
}

// Registration is one record kept alive in etcd.
type Registration struct {
	cli     *clientv3.Client
	key     string
	value   string
	ttl     int64
	onError func(error)

	opt    Options // with the check's defaults filled in
	cancel context.CancelFunc
	done   chan struct{} // closed when keep has revoked the lease
	checks sync.WaitGroup
	writes sync.Mutex // one write of the record and its check state at a time, in order

	mu        sync.Mutex
	lease     clientv3.LeaseID
	granted   time.Duration // the lease's TTL, as etcd granted it
	health    *Health       // nil without a check
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
	if opt.Check != nil {
		opt.CheckInterval = cmp.Or(opt.CheckInterval, DefaultCheckInterval)
		opt.CheckTimeout = cmp.Or(opt.CheckTimeout, DefaultCheckTimeout)
		opt.CheckFailures = cmp.Or(opt.CheckFailures, DefaultCheckFailures)
		err := runCheck(ctx, opt.Check, opt.CheckTimeout)
		r.health = newHealth(err == nil, err)
	}
	r.opt = opt
	if err := r.put(ctx); err != nil {
		return nil, err
	}
	ctx, r.cancel = context.WithCancel(ctx)
	if opt.Check != nil {
		r.checks.Go(func() { r.check(ctx) })
	}
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

// TTL returns the TTL etcd granted the record's lease: Options.TTL rounded up to whole
// seconds and to etcd's minimum lease TTL (1.5 election timeouts, 2 s by default).
func (r *Registration) TTL() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.granted
}

// Health returns the state of the check, or nil without one.
func (r *Registration) Health() *Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.health == nil {
		return nil
	}
	h := *r.health
	return &h
}

// Close stops keeping the record and revokes its lease, which deletes the record.
func (r *Registration) Close() error {
	r.cancel()
	r.checks.Wait()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revokeErr
}

// put grants a new lease and puts the record under it, unless its check fails.
func (r *Registration) put(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	g, err := r.cli.Grant(ctx, r.ttl)
	if err != nil {
		return fmt.Errorf("granting a lease for %s: %w", r.key, err)
	}
	r.writes.Lock()
	defer r.writes.Unlock()
	r.mu.Lock()
	ops := r.ops(g.ID)
	r.mu.Unlock()
	if _, err := r.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		r.cli.Revoke(ctx, g.ID) // best effort: it would expire anyway
		return fmt.Errorf("putting %s: %w", r.key, err)
	}
	r.mu.Lock()
	r.lease, r.granted = g.ID, time.Duration(g.TTL)*time.Second
	r.mu.Unlock()
	return nil
}

// ops are the writes of put under a new lease: the record, unless its check fails, and
// the check's state; r.mu is held.
func (r *Registration) ops(lease clientv3.LeaseID) []clientv3.Op {
	if r.health == nil {
		return []clientv3.Op{clientv3.OpPut(r.key, r.value, clientv3.WithLease(lease))}
	}
	ops := []clientv3.Op{r.healthOp(lease)}
	if r.health.Passing {
		ops = append(ops, clientv3.OpPut(r.key, r.value, clientv3.WithLease(lease)))
	}
	return ops
}

// healthOp writes the check's state under lease; r.mu is held.
func (r *Registration) healthOp(lease clientv3.LeaseID) clientv3.Op {
	state, _ := json.Marshal(r.health) // a Health always marshals
	return clientv3.OpPut(HealthKey(r.key), string(state), clientv3.WithLease(lease))
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

// putAgain retries put, spaced out by retrypolicy up to a third of the TTL, until it
// succeeds (true) or ctx ends.
func (r *Registration) putAgain(ctx context.Context) bool {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := r.put(ctx)
		if err != nil {
			r.fail(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(retrypolicy.New(time.Duration(r.ttl)*time.Second/3)), backoff.WithMaxElapsedTime(0))
	return err == nil
}

func (r *Registration) fail(err error) {
	if r.onError != nil {
		r.onError(err)
	}
}
