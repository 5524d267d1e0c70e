package etcdsd

import (
	"strings"

	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/etcdsd/etcdsd/internal/index"
)

// watchZones makes one watcher per zone's key prefix, leaving out prefixes that lie within
// another zone's, so that only the zones' keys are read (and an etcd role needs to grant
// no more), and maps every zone to the watcher that holds its keys.
func (e *Etcdsd) watchZones() {
	paths := make([]string, len(e.Zones))
	for i, z := range e.Zones {
		paths[i] = index.RootKey(msg.Path(z, e.PathPrefix))
	}
	byPath := map[string]*watcher{}
	e.byZone = make(map[string]*watcher, len(e.Zones))
	for i, z := range e.Zones {
		outer := paths[i]
		for _, p := range paths {
			if index.Within(outer, p) {
				outer = p
			}
		}
		w, ok := byPath[outer]
		if !ok {
			w = newWatcher(outer, connector(e.newClient, e.reach), e.Verify)
			w.now = e.Now
			w.journal.size = e.IXFRJournal
			w.answerBudget = e.AnswerCache
			w.source = strings.Join(e.endpoints, " ") + " as " + e.username
			byPath[outer] = w
			e.watchers = append(e.watchers, w)
		}
		e.byZone[z] = w
	}
}
