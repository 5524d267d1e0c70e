// Package retrypolicy is the one way etcdsd's parts space out their attempts at etcd: the
// watcher, the register package and etcdsdctl. Delays grow exponentially from Initial,
// doubling, and each is spread by half either way (backoff's randomization factor), so
// that many replicas or registrations cut off together do not retry a recovering etcd at
// the same moments.
package retrypolicy

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Initial is the first delay, before its spread.
const Initial = 100 * time.Millisecond

// New returns an exponential backoff that starts at Initial and grows to at most longest
// (before its spread).
func New(longest time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = Initial
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxInterval = longest
	return b
}
