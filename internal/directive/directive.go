// Package directive places etcdsd in CoreDNS's plugin order, for builds that do not
// generate that order from a plugin.cfg.
package directive

import (
	"fmt"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
)

// Register puts "etcdsd" into dnsserver.Directives right after "etcd", so that both
// handle queries at the same point of the plugin chain. Calling it twice is harmless.
func Register() error {
	d, err := insertAfter(dnsserver.Directives, "etcd", "etcdsd")
	if err != nil {
		return err
	}
	dnsserver.Directives = d
	return nil
}

func insertAfter(list []string, after, name string) ([]string, error) {
	if slices.Contains(list, name) {
		return list, nil
	}
	i := slices.Index(list, after)
	if i < 0 {
		return nil, fmt.Errorf("directive %q not found, cannot place %q after it", after, name)
	}
	return slices.Insert(slices.Clone(list), i+1, name), nil
}
