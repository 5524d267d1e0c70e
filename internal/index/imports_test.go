package index

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The index knows etcd's key-values and DNS answers, and nothing of an etcd process
// nor of CoreDNS's server: its tests run from memory, and etcdsdctl previews
// answers with it (cmd/etcdsdctl's TestImportsNoServer).
func TestImportsNoEtcdNorServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{
		"github.com/etcdsd/etcdsd/internal/devetcd", // an etcd process
		"github.com/coredns/coredns/core/dnsserver", // CoreDNS's server
		"github.com/coredns/coredns/plugin/transfer",
		"github.com/coredns/coredns/plugin/pkg/upstream", // needs a running server
	} {
		if slices.Contains(deps, banned) {
			t.Errorf("internal/index links %s", banned)
		}
	}
}
