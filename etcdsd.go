// Package etcdsd serves SkyDNS service discovery records from etcd, like CoreDNS's etcd
// plugin, but from an in-memory index that an etcd watch keeps current: queries never
// wait on etcd.
package etcdsd

import (
	"crypto/tls"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/plugin/pkg/upstream"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const pluginName = "etcdsd"

var log = clog.NewWithPlugin(pluginName)

// startupWait is how long OnStartup waits for the first complete list before it lets
// CoreDNS go on; queries get SERVFAIL until the list completes.
const startupWait = 5 * time.Second

// Etcdsd is the plugin: one Corefile stanza, one watched key range.
type Etcdsd struct {
	Next           plugin.Handler
	Fall           fall.F
	Zones          []string
	PathPrefix     string
	Upstream       *upstream.Upstream
	MinLeaseTTL    uint32 // lower bound for lease-derived TTLs
	MaxLeaseTTL    uint32 // upper bound for lease-derived TTLs
	NoApexFallback bool

	endpoints []string
	tlsConfig *tls.Config
	username  string
	password  string

	w *watcher
}

// OnStartup starts the watch and waits a little for the first complete list. It never
// fails: with etcd down, CoreDNS still starts and the watcher keeps trying.
func (e *Etcdsd) OnStartup() error {
	e.w.run()
	if !e.w.waitSynced(startupWait) {
		log.Warningf("No complete list of %s from %v after %s; answering SERVFAIL until there is one",
			e.w.start, e.endpoints, startupWait)
	}
	return nil
}

// OnShutdown stops the watch and closes the etcd client.
func (e *Etcdsd) OnShutdown() error {
	e.w.stop()
	return nil
}

func (e *Etcdsd) newClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            e.endpoints,
		TLS:                  e.tlsConfig,
		Username:             e.username,
		Password:             e.password,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		// The watcher logs the state changes that matter; the client's own JSON logs
		// would otherwise go to stderr.
		Logger: zap.NewNop(),
	})
}
