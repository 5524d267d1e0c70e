package benchdata

import (
	"encoding/json"
	"net"
	"testing"
)

// Every record's host is an address, also past service 0xffff, where an IPv6 group would
// overflow: the file plugin refuses the zone and etcdsd skips the value otherwise.
func TestRecordsHoldAddresses(t *testing.T) {
	for _, r := range Records("/skydns", 70000) {
		var v struct{ Host string }
		if err := json.Unmarshal([]byte(r.Value), &v); err != nil || net.ParseIP(v.Host) == nil {
			t.Fatalf("%s: %s holds no address", r.Key, r.Value)
		}
	}
}
