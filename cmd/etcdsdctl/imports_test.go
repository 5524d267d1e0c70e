package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// etcdsdctl is a client of etcd: it links no CoreDNS server, no etcdsd plugin with its
// metrics, and no test helpers. It previews answers with internal/index, which the
// plugin answers with too, and which pulls in CoreDNS's record builders only.
func TestImportsNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/etcdsd/etcdsd/internal/index") {
		t.Fatalf("etcdsdctl no longer previews with internal/index; deps: %v", deps)
	}
	for _, banned := range []string{
		"github.com/etcdsd/etcdsd",                                // the plugin: its registration and global metrics
		"github.com/coredns/coredns/core/dnsserver",               // CoreDNS's server
		"github.com/coredns/coredns/plugin/pkg/upstream",          // needs a running server
		"github.com/coredns/coredns/plugin/transfer",              // a plugin of the server
		"github.com/coredns/coredns/plugin/metrics",               // the prometheus plugin
		"github.com/coredns/coredns/plugin/test",                  // test helpers
		"github.com/coredns/coredns/plugin/pkg/dnstest",           // test helpers
		"go.etcd.io/etcd/server/v3/embed",                         // etcd's server
		"github.com/prometheus/client_golang/prometheus/promauto", // metrics registered at init
	} {
		if slices.Contains(deps, banned) {
			t.Errorf("etcdsdctl links %s", banned)
		}
	}
}
