package etcdsd

import (
	"time"

	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/skydns"
)

// zoneRoot is the key a zone's records are kept under: its labels reversed below the
// path prefix, as SkyDNS and the built-in etcd plugin lay keys out (msg.Path), in the form
// the index keys its roots (index.RootKey).
func zoneRoot(zone, pathPrefix string) string {
	return index.RootKey(msg.Path(zone, pathPrefix))
}

// skipped counts a value that does not decode, or a key that is no DNS name, and logs it,
// a few a second at most, the key escaped (skydns.Quote).
func (w *watcher) skipped(key string, rev int64, err error) {
	reason := skydns.Reason(err)
	skippedTotal.WithLabelValues(reason).Inc()
	if !w.skipLog.allow(time.Now()) {
		return
	}
	if reason == skydns.ReasonInvalidKey {
		log.Warningf("Key %s at revision %d maps to no DNS name: no record is named after it; the names above it answer its records", skydns.Quote(key), rev)
		return
	}
	log.Warningf("Skipping %s at revision %d: %v", skydns.Quote(key), rev, err)
}
