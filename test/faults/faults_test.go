// Package faults runs etcdsd against a three-member etcd cluster of separate processes and
// breaks the cluster while a steady load of queries runs: a killed leader, frozen members
// (SIGSTOP), compaction and defragmentation, a storm of bad values, and the whole cluster
// down and back. Names whose data did not change must never fail.
package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	_ "github.com/etcdsd/etcdsd"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/testserver"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// cluster is three etcd members, each a process of the member command.
type cluster struct {
	t           *testing.T
	bin, dir    string
	clientPorts []int
	peerPorts   []int

	mu    sync.Mutex // procs is written by the goroutines of startAll
	procs []*exec.Cmd
}

func newCluster(t *testing.T) *cluster {
	bin := t.TempDir() + "/member"
	if out, err := exec.Command("go", "build", "-o", bin, "./member").CombinedOutput(); err != nil {
		t.Fatalf("building the member command: %v\n%s", err, out)
	}
	c := &cluster{t: t, bin: bin, procs: make([]*exec.Cmd, 3)}
	t.Cleanup(c.killAll)
	// A port found free can be taken by another test's socket before a member binds it;
	// then the cluster gets another try on new ports.
	var err error
	for range 3 {
		c.dir = t.TempDir()
		c.clientPorts, c.peerPorts = nil, nil
		for range 3 {
			c.clientPorts = append(c.clientPorts, devetcd.FreePortFor(t))
			c.peerPorts = append(c.peerPorts, devetcd.FreePortFor(t))
		}
		if err = c.startAll(); err == nil {
			return c
		}
		c.killAll()
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatal(err)
	return nil
}

// startAll starts the three members together, as none is ready before a quorum is.
func (c *cluster) startAll() error {
	ready := make(chan error, 3)
	for i := range 3 {
		go func() { ready <- c.start(i) }()
	}
	var errs []error
	for range 3 {
		if err := <-ready; err != nil {
			if len(errs) == 0 {
				c.killAll() // the others wait for a quorum that will not come
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *cluster) killAll() {
	for i := range c.procs {
		c.kill(i)
	}
}

func (c *cluster) endpoint(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", c.clientPorts[i]) }

func (c *cluster) endpoints() []string {
	return []string{c.endpoint(0), c.endpoint(1), c.endpoint(2)}
}

// start starts member i (again, with its data, after a kill) and waits until it serves.
func (c *cluster) start(i int) error {
	var initial []string
	for j, p := range c.peerPorts {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", j, p))
	}
	cmd := exec.Command(c.bin, "-name", fmt.Sprintf("m%d", i), "-dir", fmt.Sprintf("%s/m%d", c.dir, i),
		"-client-port", fmt.Sprint(c.clientPorts[i]), "-peer-port", fmt.Sprint(c.peerPorts[i]),
		"-initial-cluster", strings.Join(initial, ","))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &testserver.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[i] = cmd
	c.mu.Unlock()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "ready") {
			go func() {
				for sc.Scan() {
				}
			}()
			return nil
		}
	}
	c.kill(i) // waits for it, and so for all of its stderr
	return fmt.Errorf("member %d exited before it was ready: %s", i, stderr)
}

func (c *cluster) kill(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGCONT) // a frozen process cannot die
		p.Process.Kill()
		p.Wait()
		c.procs[i] = nil
	}
}

func (c *cluster) signal(i int, s syscall.Signal) {
	if err := c.procs[i].Process.Signal(s); err != nil {
		c.t.Fatal(err)
	}
}

// leader returns the index of the member that leads.
func (c *cluster) leader(cli *clientv3.Client) int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, c.endpoint(i))
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("no leader")
	return -1
}

// load sends queries for names whose data does not change, and counts every failed or
// wrong answer.
type load struct {
	total, failed atomic.Int64
	mu            sync.Mutex
	firstFailures []string
	stop, done    chan struct{}
}

func startLoad(addr string, want map[string]string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	go func() {
		defer close(l.done)
		c := &dns.Client{Timeout: time.Second}
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			name := names[i%len(names)]
			r, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
			l.total.Add(1)
			var problem string
			switch {
			case err != nil:
				problem = err.Error()
			case r.Rcode != dns.RcodeSuccess:
				problem = dns.RcodeToString[r.Rcode]
			case len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want[name]:
				problem = fmt.Sprint(r.Answer)
			}
			if problem != "" {
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.firstFailures) < 10 {
					l.firstFailures = append(l.firstFailures, time.Now().Format("15:04:05.000")+" "+name+": "+problem)
				}
				l.mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return l
}

func (l *load) finish() {
	close(l.stop)
	<-l.done
}

func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test runs three etcd processes")
	}
	clog.Discard()
	dnsserver.Quiet = true
	c := newCluster(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// put retries a write until the cluster takes it, as a deploy script would.
	put := func(key, value string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cli.Put(ctx, key, value)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("put %s: %v", key, err)
			}
		}
	}
	want := map[string]string{}
	for i := range 20 {
		ip := fmt.Sprintf("10.50.0.%d", i+1)
		put(fmt.Sprintf("/skydns/local/example/svc-%d/i1", i), `{"host":"`+ip+`"}`)
		want[fmt.Sprintf("svc-%d.example.local.", i)] = ip
	}

	inst, ports := testserver.Start(t, 1, func(p []int) string {
		return fmt.Sprintf(".:%d {\n bind 127.0.0.1\n etcdsd example.local {\n  endpoint %s\n }\n}\n", p[0], strings.Join(c.endpoints(), " "))
	})
	defer testserver.Stop(inst)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	l := startLoad(addr, want)

	// visible writes a new record and says how long the write took (it may wait for a new
	// leader) and how long after it DNS answered the record.
	n := 0
	visible := func() string {
		t.Helper()
		n++
		name, ip := fmt.Sprintf("new-%d.example.local.", n), fmt.Sprintf("10.51.0.%d", n)
		start := time.Now()
		put(fmt.Sprintf("/skydns/local/example/new-%d", n), `{"host":"`+ip+`"}`)
		written := time.Now()
		for {
			r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
			if err == nil && len(r.Answer) == 1 {
				return fmt.Sprintf("%v (the write took %v)", time.Since(written).Round(time.Microsecond), written.Sub(start).Round(time.Millisecond))
			}
			if time.Since(written) > 60*time.Second {
				t.Fatalf("%s not in DNS a minute after its write", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("healthy cluster: a new record in DNS %s", visible())

	leader := c.leader(cli)
	c.kill(leader)
	t.Logf("leader m%d killed: a new record in DNS %s", leader, visible())
	if err := c.start(leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("m%d back: a new record in DNS %s", leader, visible())

	for i := range 3 {
		c.signal(i, syscall.SIGSTOP)
		d := visible()
		c.signal(i, syscall.SIGCONT)
		t.Logf("m%d frozen: a record written meanwhile in DNS %s", i, d)
	}

	ctx := context.Background()
	st, err := cli.Status(ctx, c.endpoint(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, st.Header.Revision); err != nil {
		t.Fatal(err)
	}
	for _, ep := range c.endpoints() {
		if _, err := cli.Defragment(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("after compaction and defragmentation: a new record in DNS %s", visible())

	var storm []clientv3.Op
	for i := range 500 {
		storm = append(storm, clientv3.OpPut(fmt.Sprintf("/skydns/local/example/storm/k%d", i), []string{`{"host":`, `[]`, `{"port":"x"}`, `{"host":"999.1.1.1"}`}[i%4]))
	}
	for len(storm) > 0 {
		k := min(len(storm), 100)
		if _, err := cli.Txn(ctx).Then(storm[:k]...).Commit(); err != nil {
			t.Fatal(err)
		}
		storm = storm[k:]
	}
	t.Logf("after a storm of 500 bad values: a new record in DNS %s", visible())

	for i := range 3 {
		c.kill(i)
	}
	time.Sleep(3 * time.Second) // the whole cluster down: answers come from the index
	c.startAll()
	t.Logf("whole cluster restarted: a new record in DNS %s", visible())

	l.finish()
	t.Logf("load: %d queries for unchanged names, %d failed", l.total.Load(), l.failed.Load())
	if l.failed.Load() > 0 {
		t.Errorf("%d of %d queries for unchanged names failed; first: %q", l.failed.Load(), l.total.Load(), l.firstFailures)
	}
}
