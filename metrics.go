package etcdsd

import (
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Why a zone's keys were read whole, as lists_total and list_duration_seconds label it.
const (
	listStart      = "start"      // the watcher's first list
	listCompacted  = "compacted"  // the watch fell behind compaction
	listDivergence = "divergence" // the self-check found the index different from etcd
	listPermission = "permission" // etcd refused the watch: the role changed
	listMissed     = "missed"     // a quiet watch through a gRPC proxy missed changes
	listRestored   = "restored"   // etcd went back to an earlier revision or another history
)

var listReasons = []string{listStart, listCompacted, listDivergence, listPermission, listMissed, listRestored}

// Per-query counts come from the prometheus plugin; these describe the index.
var (
	keysGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "keys",
		Help:      "Gauge of etcd keys held in the index, by watched key prefix.",
	}, []string{"prefix"})

	revisionGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "revision",
		Help:      "Gauge of the etcd revision of the last change to the index (its zones' SOA serial), by watched key prefix.",
	}, []string{"prefix"})

	freshGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "fresh_timestamp_seconds",
		Help:      "Gauge of the Unix time of the last word from etcd (a list, an event, a progress notification or, through a gRPC proxy, a status answer), by watched key prefix.",
	}, []string{"prefix"})

	staleGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "stale",
		Help:      "Gauge that is 1 while the index has heard nothing from etcd for " + staleAfter.String() + ", by watched key prefix.",
	}, []string{"prefix"})

	listDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "list_duration_seconds",
		// A list takes milliseconds for a small zone and tens of seconds for a million keys.
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		Help:    "Histogram of the time a complete read of a watched key prefix took, leases included, by reason: " + strings.Join(listReasons, ", ") + ".",
	}, []string{"reason"})

	listTimestamp = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "last_list_timestamp_seconds",
		Help:      "Gauge of the Unix time of the last complete read, by watched key prefix.",
	}, []string{"prefix"})

	eventsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "watch_events_total",
		Help:      "Counter of etcd watch events applied to the index, by event type.",
	}, []string{"type"})

	listsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "lists_total",
		Help:      "Counter of complete reads of a watched key prefix, by reason: " + strings.Join(listReasons, ", ") + ".",
	}, []string{"reason"})

	cappedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "capped_lookups_total",
		Help:      "Counter of lookups that stopped after max_answers keys; their answers have TC set.",
	})

	divergencesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "divergences_total",
		Help:      "Counter of self-checks that found the index different from etcd, each repaired by a complete read, by watched key prefix.",
	}, []string{"prefix"})

	verifyDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "verify_duration_seconds",
		Buckets:   prometheus.ExponentialBuckets(0.001, 4, 10),
		Help:      "Histogram of the time a self-check of an index against etcd took.",
	})

	skippedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "skipped_values_total",
		Help:      "Counter of etcd values skipped because they do not decode, by reason: " + strings.Join(skydns.Reasons, ", ") + ".",
	}, []string{"reason"})
)

// deleteSeries removes the series of a watched key prefix.
func deleteSeries(prefix string) {
	for _, v := range []*prometheus.GaugeVec{keysGauge, revisionGauge, freshGauge, staleGauge, listTimestamp} {
		v.DeleteLabelValues(prefix)
	}
	divergencesTotal.DeleteLabelValues(prefix)
}
