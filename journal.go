package etcdsd

import (
	"sync"

	"github.com/etcdsd/etcdsd/internal/index"
)

// journal keeps the last snapshots of a watcher's index and the keys each change
// touched, so that an IXFR (RFC 1995) can be answered with the difference of the zone
// between two serials, computed when a secondary asks. Its snapshots share their trees'
// unchanged nodes with the current one and keep no prepared answers. A complete list
// starts it anew: the difference across one is not known key by key.
type journal struct {
	mu      sync.Mutex
	size    int            // changes kept; 0: no journal, every IXFR is answered in full
	entries []journalEntry // oldest first
}

type journalEntry struct {
	snap *index.Snapshot
	keys []string // the keys changed since the entry before; none for the first
}

// reset starts the journal at s.
func (j *journal) reset(s *index.Snapshot) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = j.entries[:0]
	if j.size > 0 {
		j.entries = append(j.entries, journalEntry{snap: bare(s)})
	}
}

// add records that s follows the last entry, changing keys.
func (j *journal) add(s *index.Snapshot, keys []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.entries) == 0 {
		return
	}
	j.entries = append(j.entries, journalEntry{snap: bare(s), keys: keys})
	if n := len(j.entries) - 1 - j.size; n > 0 {
		j.entries = append(j.entries[:0:0], j.entries[n:]...)
	}
}

// since returns the entries from the one whose serial is serial to the newest, or nil
// when the journal does not reach back to it.
func (j *journal) since(serial uint32) []journalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, e := range j.entries {
		if e.snap.Serial() == serial {
			return append([]journalEntry(nil), j.entries[i:]...)
		}
	}
	return nil
}

// bare is s without its prepared answers, which a journal would otherwise keep alive.
func bare(s *index.Snapshot) *index.Snapshot { return s.WithAnswers(0, nil) }
