// Package etcdsd serves SkyDNS service discovery records from etcd, like CoreDNS's etcd
// plugin, but from an in-memory index that an etcd watch keeps current: queries never
// wait on etcd.
package etcdsd

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/plugin/transfer"
	"github.com/etcdsd/etcdsd/internal/index"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const pluginName = "etcdsd"

var log = clog.NewWithPlugin(pluginName)

const dialTimeout = 5 * time.Second

// keepaliveTime is how long the client's connection may be quiet before it pings etcd.
// etcd 3.4's gRPC proxy sets no keepalive policy of its own, so gRPC's default holds
// there: a client that pings more often than every 5 minutes on a quiet connection gets
// GOAWAY too_many_pings after a few, and its streams break (TestKeepaliveAccepted); etcd
// itself and later proxies accept pings every 5 s (--grpc-keepalive-min-time). The pings
// are not what finds a dead etcd: the watch asks for progress four times a second, or,
// through a proxy, asks every endpoint for its status after a second of quiet and reads
// the zone after a longer one (watcher.watch), and makes a new client when those say the
// connection answers nothing.
const (
	keepaliveTime    = 5*time.Minute + 15*time.Second
	keepaliveTimeout = 10 * time.Second
)

// Etcdsd is the plugin: one Corefile stanza, one watched key range.
type Etcdsd struct {
	Next           plugin.Handler
	Fall           fall.F
	zones          []string      // fixed at parse: each has its watcher (watchZones)
	index.Options                // what answers depend on besides the records
	MaxStale       time.Duration // 0: answer from the index however long etcd is away
	StartupTimeout time.Duration // how long start-up waits for the first lists; 0: not at all
	NotifyInterval time.Duration // the shortest time between two NOTIFY messages for a zone
	// watch is what each of the stanza's watchers is made with, at parse: the options
	// that only a watcher reads (verify, ixfr_journal, answer_cache) are set nowhere else.
	watch watchConfig

	etcdTarget // the endpoint, tls and credentials options

	watchers   []*watcher          // one per zone prefix that no other zone's prefix holds
	byZone     map[string]*watcher // the watcher holding each zone's keys
	group      *group              // the stanzas of e's CoreDNS instance; nil: e alone
	xfer       *transfer.Transfer  // the server block's transfer plugin, for NOTIFY; nil: none
	stopNotify context.CancelFunc
	started    sync.Once
}

// etcdTarget is the etcd a stanza reads, and as whom.
type etcdTarget struct {
	endpoints          []string
	tlsConfig          *tls.Config
	username, password string
}

// source names the etcd and the user: a reload's watcher adopts only the same source's
// index (watcher.succeed).
func (t *etcdTarget) source() string { return strings.Join(t.endpoints, " ") + " as " + t.username }

// OnStartup starts the watches of every etcdsd stanza of the instance, if no stanza has
// yet, and waits for the first complete lists of e's zones until the instance's start-up
// deadline: one deadline for all stanzas, so that etcd being away keeps CoreDNS's ports
// shut for the longest startup_timeout, not for the sum of them. A zone that fails for a
// reason only an operator can fix (credentials, certificates, roles) is not waited for. OnStartup never fails: with
// etcd down, CoreDNS still starts and the watchers keep trying.
func (e *Etcdsd) OnStartup() error {
	until := time.Now().Add(e.StartupTimeout)
	if e.group != nil {
		until = e.group.start()
	} else {
		e.start()
	}
	deadline, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	for _, w := range e.watchers {
		select {
		case <-w.settled:
		case <-deadline.Done():
		}
	}
	e.startNotify()
	for _, w := range e.watchers {
		if w.snapshot() != nil || w.failure() != nil { // a failure is logged once, where it happens
			continue
		}
		log.Warningf("No complete list of %s from %v after %s; answering SERVFAIL for it until there is one",
			w.root, e.endpoints, e.StartupTimeout)
	}
	return nil
}

// start starts e's watches, once.
func (e *Etcdsd) start() {
	e.started.Do(func() {
		for _, w := range e.watchers {
			w.run()
		}
	})
}

// OnShutdown stops the watches and closes their etcd clients.
func (e *Etcdsd) OnShutdown() error {
	if e.stopNotify != nil {
		e.stopNotify()
	}
	for _, w := range e.watchers {
		w.stop()
	}
	return nil
}

// reach says why none of e's endpoints can be reached, or nil when one can.
func (e *Etcdsd) reach(ctx context.Context) error { return diagnose(ctx, e.endpoints, e.tlsConfig) }

// newClient makes the client of one watcher. With credentials, clientv3.New
// authenticates before it returns: ctx (the watcher's) and the dial timeout keep that from
// blocking a shutdown or hiding a failure. A server certificate that fails verification,
// or a scheme the server does not speak, is found first (diagnose): the client would only
// time out.
func (e *Etcdsd) newClient(ctx context.Context) (*clientv3.Client, error) {
	// A cause that no retry can mend stops the client, and so does an etcd absent from
	// every endpoint, so that the log says so at once; for the others (a slow link, a
	// member that does not answer) it is made, and the cause explains what its requests
	// meet.
	if err := e.reach(ctx); err != nil && (definitive(err) || absent(err)) {
		return nil, err
	}
	return clientv3.New(clientv3.Config{
		Context:              ctx,
		DialTimeout:          dialTimeout,
		Endpoints:            e.endpoints,
		TLS:                  e.tlsConfig,
		Username:             e.username,
		Password:             e.password,
		DialKeepAliveTime:    keepaliveTime,
		DialKeepAliveTimeout: keepaliveTimeout,
		// The watcher logs the state changes that matter; the client's own JSON logs
		// would otherwise go to stderr.
		Logger: zap.NewNop(),
	})
}
