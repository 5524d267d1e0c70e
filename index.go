package etcdsd

import (
	"strings"

	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/google/btree"
)

// entry is one etcd key as the index holds it: decoded once, when it arrived.
type entry struct {
	key    string
	name   string // the path queries find the key under, when not key (namePath)
	modRev int64
	svc    msg.Service
	lease  *lease // nil when the key has no lease
	// aliasText marks a value with a host name and a text: a CNAME whose text only TXT
	// answers use (see view.Records).
	aliasText bool
	// bad marks a value that did not decode. The key stays in the index so that range
	// lookups see the same key space as etcd, but it never yields a record.
	bad bool
}

func entryLess(a, b *entry) bool { return a.key < b.key }

// snapshot is an immutable view of the index at one etcd revision. Queries load the
// current snapshot once and read it without locks while the watcher builds the next one.
type snapshot struct {
	tree *btree.BTreeG[*entry]
	// names holds the entries whose name path is not their key, by that path.
	names *btree.BTreeG[*entry]
	root  string // the zone root's key, which name paths are relative to
	rev   int64  // the revision of the last change to the zone's keys: the SOA serial
	// The spans of the zone's keys and the revision each is applied up to: the index
	// holds what etcd held in spans[i] at applied[i], which the self-check reads.
	spans   []span
	applied []int64
	// seq numbers the snapshots of one index, for the prepared answers they share.
	seq     uint64
	answers *answerCache
}

// serial is the zone's SOA serial: the revision's low 32 bits.
func (s *snapshot) serial() uint32 { return uint32(s.rev) } // #nosec G115 -- serial arithmetic wraps by design

func newTree() *btree.BTreeG[*entry] { return btree.NewG(32, entryLess) }

// get returns the entry stored at exactly key.
func (s *snapshot) get(key string) *entry {
	e, _ := s.tree.Get(&entry{key: key})
	return e
}

// below calls fn for every entry whose key starts with prefix, in key order, until fn
// returns false.
func (s *snapshot) below(prefix string, fn func(*entry) bool) {
	s.tree.AscendGreaterOrEqual(&entry{key: prefix}, func(e *entry) bool {
		if !strings.HasPrefix(e.key, prefix) {
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
func (s *snapshot) lookup(path string, recursive bool, limit int) (found []*entry, capped bool) {
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
		return e.key == path || recursive && (strings.HasPrefix(e.key, dir) || !levelAt(s.root, e.key, path))
	}
	s.byName(path, func(e *entry) bool { return e.name == path }, skip, add)
	if recursive && !capped {
		s.byName(dir, func(e *entry) bool { return strings.HasPrefix(e.name, dir) }, skip, add)
	}
	return found, capped
}

// byName calls add for the entries from name path "from" on while in holds for their
// name path, skipping those seen, until add returns false.
func (s *snapshot) byName(from string, in, seen func(*entry) bool, add func(*entry) bool) {
	s.names.AscendGreaterOrEqual(&entry{name: from}, func(e *entry) bool {
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
func (s *snapshot) exists(path string) bool {
	path = strings.TrimSuffix(path, "/")
	if found, _ := s.lookup(path, true, 1); len(found) > 0 {
		return true
	}
	if s.names == nil {
		return false
	}
	at := func(from string, in func(string) bool) (ok bool) {
		s.names.AscendGreaterOrEqual(&entry{name: from}, func(e *entry) bool {
			ok = in(e.name)
			return false
		})
		return ok
	}
	return at(path, func(n string) bool { return n == path }) ||
		at(path+"/", func(n string) bool { return strings.HasPrefix(n, path+"/") })
}
