package register

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// HealthPrefix is where the check states of registrations live: a record at key K has its
// state at HealthPrefix+K. It lies outside every SkyDNS path, so etcdsd never serves it.
const HealthPrefix = "/etcdsd/health"

// HealthKey returns the key of the check state of the record at key.
func HealthKey(key string) string { return HealthPrefix + key }

// Health is the state of a registration's check, as kept in etcd (JSON) next to the record.
type Health struct {
	Passing bool      `json:"passing"`
	Since   time.Time `json:"since"`            // when the check last changed state
	Output  string    `json:"output,omitempty"` // why it fails
}

func newHealth(passing bool, err error) *Health {
	h := &Health{Passing: passing, Since: time.Now().UTC().Truncate(time.Second)}
	if err != nil {
		h.Output = err.Error()
	}
	return h
}

// String says what etcdsdctl ls shows.
func (h *Health) String() string {
	if h.Passing {
		return fmt.Sprintf("check passing since %s", h.Since.Format(time.RFC3339))
	}
	return fmt.Sprintf("check failing since %s, record withdrawn: %s", h.Since.Format(time.RFC3339), h.Output)
}

// check runs the check every CheckInterval until ctx ends, and withdraws or puts back the
// record when its state changes. A write that fails is made again at the next run.
func (r *Registration) check(ctx context.Context) {
	t := time.NewTicker(r.opt.CheckInterval)
	defer t.Stop()
	failures, stale := 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := runCheck(ctx, r.opt.Check, r.opt.CheckTimeout)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		r.mu.Lock()
		passing := r.health.Passing
		changed := (err == nil) != passing && (err == nil || failures >= r.opt.CheckFailures)
		if changed {
			r.health = newHealth(err == nil, err)
		}
		r.mu.Unlock()
		if changed && r.opt.OnHealth != nil {
			r.opt.OnHealth(err == nil, err)
		}
		if changed || stale {
			stale = r.write(ctx) != nil
		}
	}
}

// write makes etcd hold the record as the check's state says, under the current lease.
func (r *Registration) write(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	r.writes.Lock()
	defer r.writes.Unlock()
	r.mu.Lock()
	lease, passing, state := r.lease, r.health.Passing, r.healthOp(r.lease)
	r.mu.Unlock()
	txn := r.cli.Txn(ctx)
	if passing {
		txn = txn.Then(clientv3.OpPut(r.key, r.value, clientv3.WithLease(lease)), state)
	} else {
		// Withdraw only the record this registration put: another's, or one written by
		// hand, stays.
		txn = txn.If(clientv3.Compare(clientv3.LeaseValue(r.key), "=", lease)).
			Then(clientv3.OpDelete(r.key), state).Else(state)
	}
	_, err := txn.Commit()
	if err != nil {
		r.fail(fmt.Errorf("writing the check state of %s: %w", r.key, err))
	}
	return err
}
