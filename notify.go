package etcdsd

import (
	"context"
	"sync"
	"time"
)

// startNotify sends NOTIFY (RFC 1996), through the transfer plugin, to the secondaries
// of e's zones when their data changes; it does nothing when the server block has no
// transfer plugin.
func (e *Etcdsd) startNotify() {
	if e.xfer == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.stopNotify = cancel
	for _, w := range e.watchers {
		var zones []string
		for z, zw := range e.byZone {
			if zw == w {
				zones = append(zones, z)
			}
		}
		go e.notify(ctx, w, zones)
	}
}

// notify sends a NOTIFY for zones after each change of w's index, at most one per
// NotifyInterval; the transfer plugin's Notify retries each secondary three times.
func (e *Etcdsd) notify(ctx context.Context, w *watcher, zones []string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.changed:
		}
		// The transfer plugin tries each secondary in turn, three times: one that does
		// not answer must hold up no other zone.
		var wg sync.WaitGroup
		for _, z := range zones {
			wg.Go(func() {
				if err := e.xfer.Notify(z); err != nil {
					log.Warningf("NOTIFY for %s: %v", z, err)
				}
			})
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.NotifyInterval):
		}
	}
}
