// Command coredns is CoreDNS with its standard plugins plus etcdsd, which runs right
// after etcd in the plugin chain, so one binary can serve and compare both.
package main

import (
	"log"

	_ "github.com/coredns/coredns/core/plugin" // CoreDNS's standard plugin set
	"github.com/coredns/coredns/coremain"
	_ "github.com/etcdsd/etcdsd"
	"github.com/etcdsd/etcdsd/internal/directive"
)

func main() {
	if err := directive.Register(); err != nil {
		log.Fatal(err)
	}
	coremain.Run()
}
