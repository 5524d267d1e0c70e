// Package index holds a zone's SkyDNS records as etcd held them at one revision, and
// answers DNS questions from them the way CoreDNS's etcd plugin answers from etcd: with
// the same record builders (plugin.A, plugin.SRV, ...) over a ServiceBackend that reads a
// snapshot instead of etcd. A Builder turns a paged list (Pages, Builder.List) and watch
// responses (Builder.Apply) into immutable Snapshots; Snapshot.Build answers a question,
// Transfer gives a zone's records for AXFR and IXFR. It registers no CoreDNS plugin and no
// metric, so that the plugin, which watches etcd and serves DNS, and etcdsdctl, which
// previews answers from one read (Read), share it.
package index

import (
	"strings"

	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/google/btree"
)

// entry is one etcd key as the index holds it: decoded once, when it arrived. The key is
// held relative to the index's root (relKey), and the fields of its SkyDNS value that
// most keys leave empty live apart (entryMore): a key of make bench's takes 96 + 24
// bytes here, not 160 + 64.
type entry struct {
	key    string // relative to the index's root
	modRev int64
	lease  *Lease // nil when the key has no lease
	host   string
	// The value's port, priority (the default when it set none) and weight, checked to
	// lie in -1..65535 (skydns.Service.Check), and TTL.
	port, priority, weight int32
	ttl                    uint32
	mail                   bool
	// aliasText marks a value with a host name and a text: a CNAME whose text only TXT
	// answers use (see view.Records).
	aliasText bool
	// bad marks a value that did not decode. The key stays in the index so that range
	// lookups see the same key space as etcd, but it never yields a record.
	bad bool
	// unnamed marks a key that maps to no DNS name (skydns.CheckKey): its records are the
	// names' above it, and none is named after it.
	unnamed bool
	more    *entryMore // nil when the key has no name path and its value no text, group or targetstrip
}

// entryMore holds what few keys have: a name path, and the rarely set fields of a SkyDNS
// value.
type entryMore struct {
	name        string // the path queries find the key under, when not the key's (namePath)
	text, group string
	targetStrip int
}

// name returns the key's name path, or "" when queries find it under its own path.
func (e *entry) name() string {
	if e.more == nil {
		return ""
	}
	return e.more.name
}

// named returns a probe for the names tree.
func named(name string) *entry { return &entry{more: &entryMore{name: name}} }

// setService stores the fields of s in e.
func (e *entry) setService(s msg.Service) {
	e.host, e.ttl, e.mail = s.Host, s.TTL, s.Mail
	e.port, e.priority, e.weight = int32(s.Port), int32(s.Priority), int32(s.Weight) // #nosec G115 -- checked to fit by skydns.Service.Check
	if s.Text != "" || s.Group != "" || s.TargetStrip != 0 {
		e.more = &entryMore{name: e.name(), text: s.Text, group: s.Group, targetStrip: s.TargetStrip}
	}
}

// service returns the value as the etcd plugin's record builders take it; root is the
// index's.
func (e *entry) service(root string) msg.Service {
	s := msg.Service{Host: e.host, Port: int(e.port), Priority: int(e.priority), Weight: int(e.weight),
		Mail: e.mail, TTL: e.ttl, Key: fullKey(root, e.key)}
	if e.more != nil {
		s.Text, s.Group, s.TargetStrip = e.more.text, e.more.group, e.more.targetStrip
	}
	return s
}

// text returns the value's text.
func (e *entry) text() string {
	if e.more == nil {
		return ""
	}
	return e.more.text
}

func entryLess(a, b *entry) bool { return a.key < b.key }

// Snapshot is an immutable view of the index at one etcd revision. Queries load the
// current snapshot once and read it without locks while the watcher builds the next one.
type Snapshot struct {
	tree *btree.BTreeG[*entry]
	// names holds the entries whose name path is not their key, by that path.
	names *btree.BTreeG[*entry]
	root  string // the zone root's key, which name paths are relative to
	rev   int64  // the revision of the last change to the zone's keys
	epoch int64  // added to rev in the SOA serial (Builder.epoch)
	// The spans of the zone's keys and the revision each is applied up to: the index
	// holds what etcd held in spans[i] at applied[i], which the self-check reads.
	spans   []Span
	applied []int64
	// seq numbers the snapshots of one index, for the prepared answers they share.
	seq     uint64
	answers *AnswerCache
}

// Serial is the zone's SOA serial: the low 32 bits of the revision of the zone's last
// change, plus, after etcd's history was replaced (Builder.Restored), the revisions the
// index had reached before: the serial keeps increasing in RFC 1982's arithmetic, as
// secondaries need, although etcd's revision went back.
func (s *Snapshot) Serial() uint32 { return uint32(s.rev + s.epoch) } // #nosec G115 -- serial arithmetic wraps by design

// Rev returns the revision of the last change to the zone's keys.
func (s *Snapshot) Rev() int64 { return s.rev }

// Len returns the number of keys the snapshot holds.
func (s *Snapshot) Len() int { return s.tree.Len() }

// Spans returns the spans of the zone's keys, and the revision each is applied up to: the
// snapshot holds what etcd held in spans[i] at applied[i].
func (s *Snapshot) Spans() (spans []Span, applied []int64) { return s.spans, s.applied }

// WithAnswers returns s with other prepared answers, numbered seq among their snapshots:
// a new index's copy of an old one's, or, with none, a copy for a journal that would
// otherwise keep s's answers alive.
func (s *Snapshot) WithAnswers(seq uint64, answers *AnswerCache) *Snapshot {
	c := *s
	c.seq, c.answers = seq, answers
	return &c
}

func newTree() *btree.BTreeG[*entry] { return btree.NewG(32, entryLess) }

// relKey returns a key held under root (root itself or a key below root + "/") relative
// to root: "" for root, "/a/b" for root + "/a/b". Relative keys sort as the keys do. A
// root of "/" holds keys as they are.
func relKey(root, key string) string {
	if root == "/" {
		return key
	}
	return key[len(root):]
}

// fullKey is the inverse of relKey.
func fullKey(root, rel string) string {
	if root == "/" {
		return rel
	}
	return root + rel
}

// relBound maps any key to the relative key space for a range bound: what sorts before
// root's keys to "", what sorts after them past every relative key.
func relBound(root, key string) string {
	switch {
	case root == "/" || strings.HasPrefix(key, root):
		return relKey(root, key)
	case key < root:
		return ""
	}
	return "\xff"
}

// Has reports whether the snapshot holds exactly key.
func (s *Snapshot) Has(key string) bool { return s.get(key) != nil }

// get returns the entry stored at exactly key.
func (s *Snapshot) get(key string) *entry {
	if !Within(key, s.root) {
		return nil
	}
	e, _ := s.tree.Get(&entry{key: relKey(s.root, key)})
	return e
}

// below calls fn for every entry whose key starts with prefix, in key order, until fn
// returns false.
func (s *Snapshot) below(prefix string, fn func(*entry) bool) {
	if !strings.HasPrefix(prefix, s.root) {
		return
	}
	rel := relKey(s.root, prefix)
	s.tree.AscendGreaterOrEqual(&entry{key: rel}, func(e *entry) bool {
		if !strings.HasPrefix(e.key, rel) {
			return false
		}
		return fn(e)
	})
}

// lookup returns the entries a query for path reads: the key path itself and, with
// recursive, every key below it, then the keys found there under their name path
// (namePath). A name's own record comes with its children's, where the etcd plugin reads
// only the children. It reads at most limit keys, in key order, and says whether it
// stopped there.
func (s *Snapshot) lookup(path string, recursive bool, limit int) (found []*entry, capped bool) {
	path = strings.TrimSuffix(path, "/")
	dir := path + "/"
	add := func(e *entry) bool {
		if len(found) == limit {
			capped = true
			return false
		}
		found = append(found, e)
		return true
	}
	if e := s.get(path); e != nil {
		add(e)
	}
	if recursive {
		s.below(dir, add)
	}
	if capped || s.names == nil || s.names.Len() == 0 {
		return found, capped
	}
	// A key found under its own path already is not read twice. Below path, a key is
	// read where path stands for one of its key levels: 61.photos stands for none of
	// photos/192.0.2.61's, so that name exists but holds no record (as in a zone file).
	skip := func(e *entry) bool {
		key := fullKey(s.root, e.key)
		return key == path || recursive && (strings.HasPrefix(key, dir) || !levelAt(s.root, key, path))
	}
	s.byName(path, func(e *entry) bool { return e.name() == path }, skip, add)
	if recursive && !capped {
		s.byName(dir, func(e *entry) bool { return strings.HasPrefix(e.name(), dir) }, skip, add)
	}
	return found, capped
}

// byName calls add for the entries from name path "from" on while in holds for their
// name path, skipping those seen, until add returns false.
func (s *Snapshot) byName(from string, in, seen func(*entry) bool, add func(*entry) bool) {
	s.names.AscendGreaterOrEqual(named(from), func(e *entry) bool {
		if !in(e) {
			return false
		}
		return seen(e) || add(e)
	})
}

// exists reports whether the name at path has a key at or below it, whether or not
// the key's value decoded, under its own path or its name path: such a name is never
// NXDOMAIN (RFC 1034 section 4.3.2, and RFC 8020 lets a resolver drop everything below
// an NXDOMAIN name).
func (s *Snapshot) exists(path string) bool {
	path = strings.TrimSuffix(path, "/")
	if found, _ := s.lookup(path, true, 1); len(found) > 0 {
		return true
	}
	if s.names == nil {
		return false
	}
	at := func(from string, in func(string) bool) (ok bool) {
		s.names.AscendGreaterOrEqual(named(from), func(e *entry) bool {
			ok = in(e.name())
			return false
		})
		return ok
	}
	return at(path, func(n string) bool { return n == path }) ||
		at(path+"/", func(n string) bool { return strings.HasPrefix(n, path+"/") })
}
