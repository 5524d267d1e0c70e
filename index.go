package etcdsd

import (
	"strings"

	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/google/btree"
)

// entry is one etcd key as the index holds it: decoded once, when it arrived.
type entry struct {
	key    string
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
	rev  int64 // the revision of the last change to the zone's keys: the SOA serial
	// The spans of the zone's keys and the revision each is applied up to: the index
	// holds what etcd held in spans[i] at applied[i], which the self-check reads.
	spans   []span
	applied []int64
	answers answerCache
}

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

// lookup returns the entries a range read of the etcd plugin would return for path:
// with recursive, the keys below path + "/" or, when there are none, the key path itself;
// without it, only the key path. It reads at most limit keys, in key order, and says
// whether it stopped there.
func (s *snapshot) lookup(path string, recursive bool, limit int) (found []*entry, capped bool) {
	if recursive {
		dir := path
		if !strings.HasSuffix(dir, "/") {
			dir += "/"
		}
		s.below(dir, func(e *entry) bool {
			if len(found) == limit {
				capped = true
				return false
			}
			found = append(found, e)
			return true
		})
		if len(found) > 0 {
			return found, capped
		}
		path = strings.TrimSuffix(path, "/")
	}
	if e := s.get(path); e != nil {
		found = append(found, e)
	}
	return found, false
}
