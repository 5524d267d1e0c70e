package devetcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is an etcd cluster of separate processes of one etcd binary on loopback: how the
// tests run the etcd releases users run (Debian's etcd-server package, builds of other
// releases) and kill, freeze and restart members.
type Cluster struct {
	Bin     string
	Version string // the binary's own "etcd Version", such as 3.4.23

	dir                    string
	clientPorts, peerPorts []int

	mu    sync.Mutex
	procs []*process // nil while a member is down
}

// process is one running member.
type process struct {
	cmd    *exec.Cmd
	logs   Buffer
	exited chan struct{} // closed when the process has ended
	err    error         // why, once exited is closed
}

// startProcess starts bin with args, its output kept in logs, to die with this process.
func startProcess(bin string, args ...string) (*process, error) {
	p := &process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	DieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Releases returns the etcd binaries that tests run against besides the current release:
// the paths in $ETCDSD_ETCD_RELEASES, separated by spaces, such as Debian's /usr/bin/etcd.
func Releases() []string { return strings.Fields(os.Getenv("ETCDSD_ETCD_RELEASES")) }

// BinaryVersion returns the version an etcd binary reports.
func BinaryVersion(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", bin, err, out)
	}
	m := regexp.MustCompile(`etcd Version: (\S+)`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version printed no version: %s", bin, out)
	}
	return string(m[1]), nil
}

// StartCluster starts a cluster of the given number of members of bin, with data under
// dir. A port found free can be taken before a member binds it: then the cluster is tried
// again on other ports.
func StartCluster(bin, dir string, members int) (*Cluster, error) {
	version, err := BinaryVersion(bin)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		c := &Cluster{Bin: bin, Version: version, dir: filepath.Join(dir, fmt.Sprint(attempt)), procs: make([]*process, members)}
		for range members {
			for _, ports := range []*[]int{&c.clientPorts, &c.peerPorts} {
				p, err := FreePort()
				if err != nil {
					return nil, err
				}
				*ports = append(*ports, p)
			}
		}
		err := c.StartAll()
		if err == nil {
			return c, nil
		}
		c.Close()
		if attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
}

// StartClusterFor starts a cluster of bin for tb, in tb's temporary folder, with a client
// of it; both are closed when tb ends.
func StartClusterFor(tb interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Fatal(args ...any)
}, bin string, members int) (*Cluster, *clientv3.Client) {
	tb.Helper()
	c, err := StartCluster(bin, tb.TempDir(), members)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	cli, err := c.Client()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cli.Close() })
	return c, cli
}

// Endpoint returns the client URL of member i.
func (c *Cluster) Endpoint(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", c.clientPorts[i]) }

// Endpoints returns the client URLs of all members.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for i := range c.procs {
		eps = append(eps, c.Endpoint(i))
	}
	return eps
}

// Client returns a client of all members that logs nothing.
func (c *Cluster) Client() (*clientv3.Client, error) { return c.ClientAs("", "") }

// ClientAs is Client for an etcd user.
func (c *Cluster) ClientAs(user, password string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second,
		Username: user, Password: password, Logger: zap.NewNop()})
}

// StartAll starts every member together, as none is ready before a quorum is.
func (c *Cluster) StartAll() error {
	errs := make([]error, len(c.procs))
	var wg sync.WaitGroup
	for i := range c.procs {
		wg.Go(func() { errs[i] = c.Start(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// clusterToken is the initial cluster token of every test cluster.
const clusterToken = "etcdsd-test"

func (c *Cluster) name(i int) string    { return fmt.Sprintf("m%d", i) }
func (c *Cluster) dataDir(i int) string { return filepath.Join(c.dir, c.name(i)) }
func (c *Cluster) peerURL(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", c.peerPorts[i]) }

func (c *Cluster) initialCluster() string {
	var initial []string
	for j := range c.peerPorts {
		initial = append(initial, c.name(j)+"="+c.peerURL(j))
	}
	return strings.Join(initial, ",")
}

// Start starts member i (again, with its data, after Kill) and waits until it serves with
// a leader.
func (c *Cluster) Start(i int) error {
	peer := c.peerURL(i)
	args := []string{
		"--name", c.name(i), "--data-dir", c.dataDir(i),
		"--listen-client-urls", c.Endpoint(i), "--advertise-client-urls", c.Endpoint(i),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", c.initialCluster(), "--initial-cluster-state", "new",
		"--initial-cluster-token", clusterToken,
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "error",
	}
	if c.atLeast(3, 5) {
		args = append(args, "--unsafe-no-fsync") // test data: speed over durability
	}
	p, err := startProcess(c.Bin, args...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[i] = p
	c.mu.Unlock()

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Endpoint(i)}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			c.Kill(i)
			return fmt.Errorf("etcd %s member %d exited before it was ready (%v): %s", c.Version, i, p.err, &p.logs)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		st, err := cli.Status(ctx, c.Endpoint(i))
		cancel()
		if err == nil && st.Leader != 0 || isAuthError(err) {
			return nil // with auth on, a member that refuses us serves
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd %s member %d not ready after 30s: %s", c.Version, i, &p.logs)
}

func isAuthError(err error) bool {
	return errors.Is(err, rpctypes.ErrUserEmpty) || errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrInvalidAuthToken)
}

func (c *Cluster) atLeast(major, minor int) bool {
	parts := strings.SplitN(c.Version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(parts[1])
	return ma > major || ma == major && mi >= minor
}

// Wipe stops member i, removes its data and starts it on empty data with the same flags,
// as an etcd pod on an emptyDir comes back: a cluster of one member is a new cluster then,
// with the member and cluster IDs of the old one and its revision back at 1.
func (c *Cluster) Wipe(i int) error {
	c.Stop(i)
	if err := os.RemoveAll(c.dataDir(i)); err != nil {
		return err
	}
	return c.Start(i)
}

// SaveSnapshot writes a snapshot of member i's data to path, as etcdctl snapshot save does.
func (c *Cluster) SaveSnapshot(ctx context.Context, i int, path string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Endpoint(i)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Restore stops every member, restores each one's data from snapshot with restorer (the
// etcdctl of etcd 3.4, or etcdutl of later releases: "snapshot restore"), as an operator
// recovers a cluster, and starts them all again. The cluster's revision goes back to the
// snapshot's.
func (c *Cluster) Restore(restorer, snapshot string) error {
	for i := range c.procs {
		c.Stop(i)
	}
	for i := range c.procs {
		if err := os.RemoveAll(c.dataDir(i)); err != nil {
			return err
		}
		cmd := exec.Command(restorer, "snapshot", "restore", snapshot, "--name", c.name(i), "--data-dir", c.dataDir(i),
			"--initial-cluster", c.initialCluster(), "--initial-cluster-token", clusterToken,
			"--initial-advertise-peer-urls", c.peerURL(i))
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s snapshot restore: %w: %s", restorer, err, out)
		}
	}
	return c.StartAll()
}

// Kill kills member i, waking it first if it is frozen.
func (c *Cluster) Kill(i int) { c.end(i, syscall.SIGKILL) }

// Stop stops member i as an operator does, with SIGTERM.
func (c *Cluster) Stop(i int) { c.end(i, syscall.SIGTERM) }

func (c *Cluster) end(i int, s syscall.Signal) {
	c.mu.Lock()
	p := c.procs[i]
	c.procs[i] = nil
	c.mu.Unlock()
	if p != nil {
		p.cmd.Process.Signal(syscall.SIGCONT) // a frozen process cannot end
		p.cmd.Process.Signal(s)
		<-p.exited
	}
}

// Signal sends s to member i, to freeze (SIGSTOP) and thaw (SIGCONT) it.
func (c *Cluster) Signal(i int, s syscall.Signal) error {
	c.mu.Lock()
	p := c.procs[i]
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("member %d is not running", i)
	}
	return p.cmd.Process.Signal(s)
}

// Pid returns the process id of member i, or 0 while it is down.
func (c *Cluster) Pid(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[i]; p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Leader returns the index of the member that leads.
func (c *Cluster) Leader(cli *clientv3.Client) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.procs {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, c.Endpoint(i))
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return -1, errors.New("no leader")
}

// Close kills every member and removes the data.
func (c *Cluster) Close() {
	for i := range c.procs {
		c.Kill(i)
	}
	os.RemoveAll(c.dir)
}

// Buffer collects output written from several goroutines or a process, to read while
// writes may still come.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
