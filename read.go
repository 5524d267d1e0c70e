package etcdsd

import (
	"context"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/upstream"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Read reads the keys of zones under prefix once, with cli, and returns a handler that
// answers from that read exactly as the plugin answers from its index, with the default
// options and without a watch. etcdsdctl ls shows records with it. Values that do not
// decode are skipped as the plugin skips them.
func Read(ctx context.Context, cli *clientv3.Client, prefix string, zones []string) (plugin.Handler, error) {
	e := &Etcdsd{
		now:         time.Now,
		PathPrefix:  prefix,
		MinLeaseTTL: defaultMinLeaseTTL,
		MaxLeaseTTL: defaultMaxLeaseTTL,
		MaxAnswers:  defaultMaxAnswers,
		Upstream:    upstream.New(),
		Next:        plugin.HandlerFunc(refuse),
	}
	for _, z := range zones {
		e.Zones = append(e.Zones, plugin.Host(z).NormalizeExact()...)
	}
	e.watchZones()
	for _, w := range e.watchers {
		if err := w.list(ctx, lend(cli), listRead); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// refuse answers the names of no zone read.
func refuse(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
	return dns.RcodeRefused, nil
}
