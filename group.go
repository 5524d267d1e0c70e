package etcdsd

import (
	"sync"
	"time"

	"github.com/coredns/caddy"
)

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
