package index

import "go.etcd.io/etcd/api/v3/mvccpb"

// Compare compares kvs, the keys of one page read from etcd in key order, with the
// entries s holds in [from, until), and tells diff of every difference by key: '+' for a
// key only etcd has, '-' for one only s has, '~' for one at another mod revision. Keys s
// does not hold (siblings of its root) are not compared.
func (s *Snapshot) Compare(kvs []*mvccpb.KeyValue, from, until string, diff func(mark byte, key string)) {
	var idx []*entry
	s.tree.AscendRange(&entry{key: relBound(s.root, from)}, &entry{key: relBound(s.root, until)}, func(e *entry) bool {
		idx = append(idx, e)
		return true
	})
	j := 0
	for _, kv := range kvs {
		if !holds(s.root, kv.Key) {
			continue
		}
		key := relKey(s.root, string(kv.Key))
		for j < len(idx) && idx[j].key < key {
			diff('-', fullKey(s.root, idx[j].key))
			j++
		}
		switch {
		case j == len(idx) || idx[j].key > key:
			diff('+', fullKey(s.root, key))
		case idx[j].modRev != kv.ModRevision:
			diff('~', fullKey(s.root, key))
			j++
		default:
			j++
		}
	}
	for ; j < len(idx); j++ {
		diff('-', fullKey(s.root, idx[j].key))
	}
}
