package etcdsd

import (
	"context"
	"errors"
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

// lent is a conn over a client the test keeps owning (the shared test etcd's): closing
// it leaves the client open, and it cannot redial.
type lent struct{ *conn }

func lend(cli *clientv3.Client) lent {
	c := &conn{all: cli.Endpoints()}
	c.cli.Store(cli)
	return lent{c}
}

func (lent) Close() error { return nil }

func (lent) redial(context.Context) error { return errors.New("the etcd client belongs to the test") }
