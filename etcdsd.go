// Package etcdsd serves SkyDNS service discovery records from etcd, like CoreDNS's etcd
// plugin, but from an in-memory index that an etcd watch keeps current: queries never
// wait on etcd.
package etcdsd

import (
	"context"
	"crypto/tls"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/etcd/msg"
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

// defaultMaxAnswers bounds the keys one lookup reads. More records than this do not fit a
// DNS message over TCP (64 KiB) anyway.
const defaultMaxAnswers = 1000

const dialTimeout = 5 * time.Second

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
	MaxStale       time.Duration // 0: answer from the index however long etcd is away
	MaxAnswers     int           // keys one lookup reads at most

	endpoints []string
	tlsConfig *tls.Config
	username  string
	password  string

	watchers []*watcher          // one per zone prefix that no other zone's prefix holds
	byZone   map[string]*watcher // the watcher holding each zone's keys
	group    *readyGroup         // the stanzas whose readiness Ready reports; nil: only e
}

// OnStartup starts the watches and waits a little for their first complete lists. It
// never fails: with etcd down, CoreDNS still starts and the watchers keep trying.
func (e *Etcdsd) OnStartup() error {
	for _, w := range e.watchers {
		w.run()
	}
	deadline := time.Now().Add(startupWait)
	for _, w := range e.watchers {
		if !w.waitSynced(time.Until(deadline)) {
			log.Warningf("No complete list of %s from %v after %s; answering SERVFAIL for it until there is one",
				w.start, e.endpoints, startupWait)
		}
	}
	return nil
}

// OnShutdown stops the watches and closes their etcd clients.
func (e *Etcdsd) OnShutdown() error {
	for _, w := range e.watchers {
		w.stop()
	}
	return nil
}

// watchZones makes one watcher per zone's key prefix, leaving out prefixes that lie within
// another zone's, so that only the zones' keys are read (and an etcd role needs to grant
// no more), and maps every zone to the watcher that holds its keys.
func (e *Etcdsd) watchZones() {
	paths := make([]string, len(e.Zones))
	for i, z := range e.Zones {
		paths[i] = rootKey(msg.Path(z, e.PathPrefix))
	}
	byPath := map[string]*watcher{}
	e.byZone = make(map[string]*watcher, len(e.Zones))
	for i, z := range e.Zones {
		outer := paths[i]
		for _, p := range paths {
			if within(outer, p) {
				outer = p
			}
		}
		w, ok := byPath[outer]
		if !ok {
			w = newWatcher(outer, e.newClient)
			byPath[outer] = w
			e.watchers = append(e.watchers, w)
		}
		e.byZone[z] = w
	}
}

// within reports whether key path p lies at or below q.
func within(p, q string) bool {
	return q == "/" || p == q || strings.HasPrefix(p, q+"/")
}

// newClient makes the client of one watcher. With credentials, clientv3.New
// authenticates before it returns: ctx (the watcher's) and the dial timeout keep that from
// blocking a shutdown or hiding a failure.
func (e *Etcdsd) newClient(ctx context.Context) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Context:              ctx,
		DialTimeout:          dialTimeout,
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
