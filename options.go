package etcdsd

import (
	"time"

	"github.com/coredns/coredns/plugin/pkg/upstream"
	"github.com/etcdsd/etcdsd/internal/index"
)

// The defaults of a stanza's options, and their bounds; parse starts from defaults().
const (
	defaultEndpoint = "http://localhost:2379"
	// defaultStartupTimeout is how long CoreDNS's start waits for the first complete
	// lists (startup_timeout), as the kubernetes plugin's; queries get SERVFAIL until a
	// zone's list completes.
	defaultStartupTimeout = 5 * time.Second
	// defaultVerify is how often the index is checked against etcd (verify). A check
	// reads every key of the zone without values: see the README for its cost.
	defaultVerify = 10 * time.Minute
	// defaultNotifyInterval is the shortest time between two NOTIFY messages for one zone
	// (notify_interval): a burst of writes makes one message at once and one more after.
	defaultNotifyInterval = time.Second
	// defaultJournal is how many changes of a zone the IXFR journal keeps (ixfr_journal).
	defaultJournal = 100
	// minMaxStale is the least max_stale: well past the silentAfter between the times a
	// quiet watch hears from etcd, and past the second or two a member's failover takes.
	minMaxStale = 3 * silentAfter
	// minVerify is the shortest verify but 0 (off): a check reads every key of the zone, so
	// one that never ends is a load on etcd, not a check.
	minVerify = 500 * time.Millisecond
)

// defaults returns a stanza with every option at its default (the built-in etcd
// plugin's where it has the option), before the Corefile's are read.
func defaults() *Etcdsd {
	e := &Etcdsd{
		Options: index.Options{
			Now:         time.Now,
			PathPrefix:  "skydns",
			MinLeaseTTL: index.DefaultMinLeaseTTL,
			MaxLeaseTTL: index.DefaultMaxLeaseTTL,
			NegativeTTL: index.DefaultNegativeTTL,
			MaxAnswers:  index.DefaultMaxAnswers,
			Upstream:    upstream.New(),
		},
		StartupTimeout: defaultStartupTimeout,
		NotifyInterval: defaultNotifyInterval,
		watch: watchConfig{
			verifyEvery:  defaultVerify,
			journalSize:  defaultJournal,
			answerBudget: index.DefaultAnswerCache,
		},
		etcdTarget: etcdTarget{endpoints: []string{defaultEndpoint}},
	}
	// One clock: the watchers read the stanza's, as it is when they read it.
	e.watch.now = func() time.Time { return e.Now() }
	return e
}
