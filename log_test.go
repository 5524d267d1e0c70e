package etcdsd

import (
	"github.com/coredns/coredns/core/dnsserver"
	clog "github.com/coredns/coredns/plugin/pkg/log"
)

func init() {
	clog.Discard()
	dnsserver.Quiet = true // no "listening on" lines from the servers tests start
}
