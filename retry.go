package etcdsd

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/etcdsd/etcdsd/internal/retrypolicy"
)

// Retries of what failed follow retrypolicy and grow to maxBackoff, or, for errors that
// only an operator can fix (definitive), to maxDefinitiveBackoff.
const (
	maxBackoff           = 5 * time.Second
	maxDefinitiveBackoff = 30 * time.Second
)

// retry spaces out the attempts at one piece of work, with jitter, and logs a failure
// once when it starts and once when it ends, not on every attempt.
type retry struct {
	what    string
	bo      *backoff.ExponentialBackOff
	failing bool
}

func newRetry(what string) *retry {
	return &retry{what: what, bo: retrypolicy.New(maxBackoff)}
}

// fail logs err if it starts a run of failures, then waits before the next attempt.
func (r *retry) fail(ctx context.Context, err error) {
	if !r.failing {
		log.Warningf("Failed %s, retrying: %v", r.what, err)
		r.failing = true
	}
	r.bo.MaxInterval = maxBackoff
	if definitive(err) {
		r.bo.MaxInterval = maxDefinitiveBackoff
	}
	sleep(ctx, r.bo.NextBackOff())
}

func (r *retry) ok() {
	if r.failing {
		log.Infof("Recovered: %s", r.what)
	}
	r.failing = false
	r.bo.Reset()
}

// rateLimit lets a few log lines a second through and says how many it held back, so
// that a storm of bad values cannot flood the log.
type rateLimit struct {
	second time.Time
	n      int
	held   int
}

const logsPerSecond = 10

func (r *rateLimit) allow(now time.Time) bool {
	if s := now.Truncate(time.Second); !s.Equal(r.second) {
		r.flush()
		r.second, r.n = s, 0
	}
	if r.n < logsPerSecond {
		r.n++
		return true
	}
	r.held++
	return false
}

// flush reports the lines held back so far.
func (r *rateLimit) flush() {
	if r.held > 0 {
		log.Warningf("%d more skipped values not logged; see coredns_etcdsd_skipped_values_total", r.held)
		r.held = 0
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
