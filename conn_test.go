package etcdsd

import (
	"context"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Whoever calls the conn while it replaces its client (lease refreshes, the self-check,
// steering) reaches a client, old or new, and never a nil one.
func TestConnNeverWithoutClient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := connect(ctx, func(context.Context) (*clientv3.Client, error) { return testEtcd.Server().Client() })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := testEtcd.Client().Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for range 20 {
			if err := c.redial(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				c.TimeToLive(ctx, l.ID)
				c.Get(ctx, "/never-nil")
				c.restore(ctx)
			}
		})
	}
	wg.Wait()
}
