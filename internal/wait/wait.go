// Package wait is the tests' one way to wait for something that happens in the
// background: poll a condition until it holds.
package wait

import (
	"testing"
	"time"
)

// Long is the bound for what should happen within seconds: it ends a hung test and is no
// expectation of speed.
const Long = 15 * time.Second

// For polls cond every 10 ms until it holds and returns how long that took; it fails t
// when cond does not hold within the given bound.
func For(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
