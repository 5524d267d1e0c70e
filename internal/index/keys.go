package index

import (
	"errors"
	"path"
	"strings"

	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/etcdsd/etcdsd/skydns"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

const (
	defaultPriority = 10  // SRV/MX priority when a value sets none
	defaultTTL      = 300 // record TTL when neither the value nor a lease sets one
	// DefaultMinLeaseTTL and DefaultMaxLeaseTTL bound a lease-derived TTL, in seconds
	// (min-lease-ttl, max-lease-ttl).
	DefaultMinLeaseTTL = 30
	DefaultMaxLeaseTTL = 86400
	// DefaultMaxAnswers bounds the keys one lookup reads (max_answers): as many of the
	// smallest answer record (an A record with a compressed owner, 16 octets) as a 64 KiB
	// message over TCP holds. A lookup cut there sets TC (RFC 2181 section 9).
	DefaultMaxAnswers = 65536 / 16
)

// decodeService reads and checks one SkyDNS JSON value (skydns.DecodeValue) and fills in
// the default the etcd plugin fills in per query, so that lookups only have to copy the
// result.
func decodeService(value []byte) (msg.Service, error) {
	s, err := skydns.DecodeValue(value)
	if err != nil {
		return msg.Service{}, err
	}
	if s.Priority == 0 {
		s.Priority = defaultPriority
	}
	return msg.Service(s), nil
}

// RootKey is the etcd key that the zone root "." maps to under prefix, for example
// "/skydns". Every key the plugin can ever answer from is RootKey itself or lies below
// RootKey + "/".
func RootKey(prefix string) string {
	return path.Join("/" + prefix + "/")
}

// Within reports whether key path p lies at or below q.
func Within(p, q string) bool {
	return q == "/" || p == q || strings.HasPrefix(p, q+"/")
}

// Span is an etcd key range [Start, End) that is read and watched as one; an empty End
// stands for the key Start alone.
type Span struct{ Start, End string }

func (s Span) String() string {
	if s.End == "" {
		return s.Start
	}
	return "[" + s.Start + ", " + s.End + ")"
}

// Last is the first key after the span: where a walk of it in key order ends.
func (s Span) Last() string {
	if s.End == "" {
		return s.Start + "\x00"
	}
	return s.End
}

// ZoneSpan returns the one range that holds root and every key below it: "/skydns" up
// to "/skydns0", as '0' follows '/' in byte order, which keeps a sibling such as
// "/skydnsfoo" out. Siblings that sort before '0' ("/skydns-old") are in the range; the
// builder leaves them out (Builder.Holds).
func ZoneSpan(root string) Span {
	if root == "/" {
		return Span{"/", "0"}
	}
	return Span{root, root + "0"}
}

// Below returns the range of the keys below key: "key/" up to "key0", without key's
// siblings such as "key-2", which a plain prefix would take; below the root "/" lies
// every other key that starts with '/'.
func Below(key string) Span {
	if key == "/" {
		return Span{"/\x00", "0"}
	}
	return Span{key + "/", key + "0"}
}

// BelowSpans returns the two ranges that hold the same keys as ZoneSpan without its
// siblings: the keys below root, which a role granting root + "/" with --prefix may read,
// and the key root alone.
func BelowSpans(root string) (below, apex Span) {
	return Below(root), Span{root, ""}
}

// ReadZone calls read for the spans that hold the keys of the zone at root, in turn, and
// returns the spans it read: when wide, the one ZoneSpan, siblings and all; otherwise, or
// where etcd refuses the role that, BelowSpans: the keys below the root, then the root's
// own key, left out where etcd refuses the role that alone (the README's read-only role
// grants root + "/" with --prefix). Any other error of read ends the read; a refusal of
// the keys below the root too. Lists, the missed-changes read and etcdsdctl check read
// zones with it; a self-check reads the spans its list read.
func ReadZone(root string, wide bool, read func(Span) error) ([]Span, error) {
	denied := func(err error) bool { return errors.Is(err, rpctypes.ErrPermissionDenied) }
	if wide || root == "/" {
		s := ZoneSpan(root)
		err := read(s)
		if err == nil || root == "/" || !denied(err) {
			return []Span{s}, err
		}
	}
	below, apex := BelowSpans(root)
	if err := read(below); err != nil {
		return nil, err
	}
	switch err := read(apex); {
	case denied(err):
		return []Span{below}, nil
	case err != nil:
		return nil, err
	}
	return []Span{below, apex}, nil
}
