// Package testserver starts in-process CoreDNS instances for tests, on free loopback ports.
package testserver

import (
	"strings"

	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/core/dnsserver" // the "dns" server type
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/directive"
)

// TB is the part of testing.TB that Start uses.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// Start starts CoreDNS with the Corefile that corefile makes for n free ports, and
// returns the instance and the ports. A port found free can be taken by another socket
// before CoreDNS binds it, so Start tries new ports a few times.
func Start(tb TB, n int, corefile func(ports []int) string) (*caddy.Instance, []int) {
	tb.Helper()
	if err := directive.Register(); err != nil {
		tb.Fatal(err)
	}
	var err error
	for range 5 {
		ports := make([]int, n)
		for i := range ports {
			ports[i] = devetcd.FreePortFor(tb)
		}
		var inst *caddy.Instance
		inst, err = caddy.Start(caddy.CaddyfileInput{ServerTypeName: "dns", Contents: []byte(corefile(ports))})
		if err == nil {
			return inst, ports
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	tb.Fatalf("starting CoreDNS: %v", err)
	return nil, nil
}

// Stop shuts inst down, running its shutdown callbacks as a real shutdown does.
func Stop(inst *caddy.Instance) {
	inst.ShutdownCallbacks()
	inst.Stop()
}
