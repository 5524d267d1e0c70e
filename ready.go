package etcdsd

import (
	"sync"
	"time"

	"github.com/coredns/caddy"
)

// Ready implements ready.Readiness: ready once the first complete list of every zone is
// in (or, after a reload, the previous instance's index), while no index has gone without
// word from etcd for longer than max_stale, and while no zone fails for a reason only an
// operator can fix. The
// ready plugin keeps one Readiness per plugin name, so it asks one etcdsd stanza of all
// those CoreDNS runs; each therefore answers for all of them (its group).
func (e *Etcdsd) Ready() bool {
	if e.group == nil {
		return e.ownReady(e.Now())
	}
	return e.group.ready()
}

func (e *Etcdsd) ownReady(now time.Time) bool {
	for _, w := range e.watchers {
		if w.snapshot() == nil || w.failure() != nil || e.tooStale(w, now) {
			return false
		}
	}
	return true
}

// tooStale reports whether w has heard nothing from etcd for longer than max_stale.
func (e *Etcdsd) tooStale(w *watcher, now time.Time) bool {
	return e.MaxStale > 0 && w.age(now) > e.MaxStale
}

// group is every etcdsd stanza of one CoreDNS instance, in all its server blocks. A
// reload makes a new instance, and so a new group. CoreDNS runs the stanzas' OnStartup
// one after another: the first starts every stanza's watches, so that they share one
// start-up deadline.
type group struct {
	mu       sync.Mutex
	members  []*Etcdsd
	deadline time.Time // set by the first OnStartup: its time plus the longest startup_timeout
}

type groupKey struct{}

// joinGroup adds e to the group of c's instance.
func joinGroup(c *caddy.Controller, e *Etcdsd) {
	g, _ := c.Get(groupKey{}).(*group)
	if g == nil {
		g = &group{}
		c.Set(groupKey{}, g)
	}
	g.mu.Lock()
	g.members = append(g.members, e)
	g.mu.Unlock()
	e.group = g
}

// start starts the watches of every member, once, and returns the deadline of the
// instance's start-up.
func (g *group) start() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deadline.IsZero() {
		var wait time.Duration
		for _, e := range g.members {
			e.start()
			wait = max(wait, e.StartupTimeout)
		}
		g.deadline = time.Now().Add(wait)
	}
	return g.deadline
}

func (g *group) ready() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range g.members {
		if !e.ownReady(e.Now()) {
			return false
		}
	}
	return true
}
