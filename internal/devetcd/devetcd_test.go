package devetcd

import "testing"

// A port FreePort hands out is never one the kernel may give an outgoing connection
// meanwhile: in cmd/replicas, replicas whose ready port had become a relay's local port
// failed to start after a mass restart, one restart in four.
func TestFreePortIsNoEphemeralPort(t *testing.T) {
	low, high := EphemeralPorts()
	seen := map[int]bool{}
	for range 500 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p >= low && p <= high {
			t.Fatalf("FreePort gave %d, in the ephemeral range %d..%d", p, low, high)
		}
		if seen[p] {
			t.Fatalf("FreePort gave %d twice", p)
		}
		seen[p] = true
	}
}

// Start on a port another etcd serves fails, though that etcd answers the status check:
// make run reported success and wrote its seed records into whatever etcd held 2379.
func TestStartRefusesAnotherEtcdsPort(t *testing.T) {
	_, other, _ := StartFor(t)
	t.Cleanup(other.Close)
	s, err := Start(t.TempDir(), other.Port())
	if err == nil {
		s.Close()
		t.Fatalf("Start on port %d, where another etcd serves, succeeded", other.Port())
	}
	t.Log(err)
}
