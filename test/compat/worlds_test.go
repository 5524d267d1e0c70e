package compat

import (
	"testing"

	"github.com/etcdsd/etcdsd/internal/devetcd"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// world is an etcd that TestModel writes to and breaks: the current release embedded in
// this process, or a cluster of processes of some release's binary.
type world interface {
	target() target
	// restart stops all of etcd and starts it again with its data.
	restart() error
	// members is how many members kill and start can address; 1 for no cluster.
	members() int
	kill(i int)
	start(i int) error
	close()
}

// embedded is one member of the current etcd release, inside the test process.
type embedded struct {
	dir string
	srv *devetcd.Server
	cli *clientv3.Client
}

func newEmbedded(t *testing.T) *embedded {
	dir, srv, cli := devetcd.StartFor(t)
	return &embedded{dir: dir, srv: srv, cli: cli}
}

func (e *embedded) target() target  { return target{[]string{e.srv.Endpoint}, e.cli} }
func (e *embedded) members() int    { return 1 }
func (e *embedded) kill(int)        {}
func (e *embedded) start(int) error { return nil }
func (e *embedded) restart() error {
	port := e.srv.Port()
	e.srv.Close()
	srv, err := devetcd.Start(e.dir, port)
	if err != nil {
		return err
	}
	e.srv = srv
	return nil
}

func (e *embedded) close() { e.srv.Close() } // the client goes with the test

// cluster is three members, each a process of one etcd release's binary.
type cluster struct {
	c   *devetcd.Cluster
	cli *clientv3.Client
}

func newCluster(t *testing.T, bin string) *cluster {
	c, err := devetcd.StartCluster(bin, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := c.Client()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return &cluster{c: c, cli: cli}
}

func (c *cluster) target() target    { return target{c.c.Endpoints(), c.cli} }
func (c *cluster) members() int      { return 3 }
func (c *cluster) kill(i int)        { c.c.Kill(i) }
func (c *cluster) start(i int) error { return c.c.Start(i) }
func (c *cluster) restart() error {
	for i := range 3 {
		c.c.Kill(i)
	}
	return c.c.StartAll()
}

func (c *cluster) close() {
	c.cli.Close()
	c.c.Close()
}

// maker names a world and makes it.
type maker struct {
	name string
	make func(*testing.T) world
}

// worlds returns the etcds TestModel runs on: the embedded current release, a cluster of
// the current release's binary, and a cluster of each of $ETCDSD_ETCD_RELEASES.
func worlds(t *testing.T) []maker {
	bin, err := devetcd.CurrentBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	all := []maker{{"embedded", func(t *testing.T) world { return newEmbedded(t) }}}
	for _, b := range append([]string{bin}, devetcd.Releases()...) {
		version, err := devetcd.BinaryVersion(b)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, maker{"etcd " + version + " cluster", func(t *testing.T) world { return newCluster(t, b) }})
	}
	return all
}
