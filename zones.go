package etcdsd

import "github.com/etcdsd/etcdsd/internal/index"

// watchZones makes one watcher per zone's key prefix, leaving out prefixes that lie within
// another zone's, so that only the zones' keys are read (and an etcd role needs to grant
// no more), and maps every zone to the watcher that holds its keys.
func (e *Etcdsd) watchZones() {
	paths := make([]string, len(e.zones))
	for i, z := range e.zones {
		paths[i] = zoneRoot(z, e.PathPrefix)
	}
	byPath := map[string]*watcher{}
	e.byZone = make(map[string]*watcher, len(e.zones))
	for i, z := range e.zones {
		outer := paths[i]
		for _, p := range paths {
			if index.Within(outer, p) {
				outer = p
			}
		}
		w, ok := byPath[outer]
		if !ok {
			cfg := e.watch
			cfg.root, cfg.connect, cfg.source = outer, connector(e.newClient, e.reach), e.source()
			w = newWatcher(cfg)
			byPath[outer] = w
			e.watchers = append(e.watchers, w)
		}
		e.byZone[z] = w
	}
}
