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

// span is an etcd key range [start, end) that is read and watched as one; an empty end
// stands for the key start alone.
type span struct{ start, end string }

func (s span) String() string {
	if s.end == "" {
		return s.start
	}
	return "[" + s.start + ", " + s.end + ")"
}

// last is the first key after the span, for walking it in a tree.
func (s span) last() string {
	if s.end == "" {
		return s.start + "\x00"
	}
	return s.end
}

// zoneSpan returns the one range that holds root and every key below it: "/skydns" up
// to "/skydns0", as '0' follows '/' in byte order, which keeps a sibling such as
// "/skydnsfoo" out. Siblings that sort before '0' ("/skydns-old") are in the range; the
// builder leaves them out (builder.holds).
func zoneSpan(root string) span {
	if root == "/" {
		return span{"/", "0"}
	}
	return span{root, root + "0"}
}

// belowSpans returns the two ranges that hold the same keys as zoneSpan without its
// siblings: the keys below root, which a role granting root + "/" with --prefix may read,
// and the key root alone.
func belowSpans(root string) (below, apex span) {
	return span{root + "/", root + "0"}, span{root, ""}
}
