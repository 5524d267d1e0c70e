package etcdsd

import (
	"path"

	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/etcdsd/etcdsd/skydns"
)

const (
	defaultPriority    = 10    // SRV/MX priority when a value sets none
	defaultTTL         = 300   // record TTL when neither the value nor a lease sets one
	defaultMinLeaseTTL = 30    // lower bound for a lease-derived TTL
	defaultMaxLeaseTTL = 86400 // upper bound for a lease-derived TTL
)

// decodeService reads and checks one SkyDNS JSON value (skydns.Decode) and fills in the
// default the etcd plugin fills in per query, so that lookups only have to copy the result.
func decodeService(key string, value []byte) (msg.Service, error) {
	s, err := skydns.Decode(key, value)
	if err != nil {
		return msg.Service{}, err
	}
	if s.Priority == 0 {
		s.Priority = defaultPriority
	}
	return msg.Service(s), nil
}

// rootKey is the etcd key that the zone root "." maps to under prefix, for example "/skydns".
// Every key the plugin can ever answer from is rootKey itself or lies below rootKey + "/".
func rootKey(prefix string) string {
	return path.Join("/" + prefix + "/")
}

// keyRange returns the etcd range [start, end) that holds rootKey and all keys below it:
// "/skydns" up to "/skydns0", as '0' follows '/' in byte order, which keeps a sibling such
// as "/skydnsfoo" out. Siblings that sort before '0' ("/skydns-old") are in the range; the
// watcher drops them (watcher.holds).
func keyRange(prefix string) (start, end string) {
	start = rootKey(prefix)
	if start == "/" {
		return "/", "0"
	}
	return start, start + "0"
}
