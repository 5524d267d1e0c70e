// Command replicas measures what many etcdsd replicas cost one etcd cluster: N CoreDNS
// processes with etcdsd watching a three-member etcd cluster (Debian's etcd-server by
// default), directly and through etcd's gRPC proxy, at steady state, after a leader change,
// after a compaction that makes every replica list again, and after every replica restarts
// at once. A writer changes one key ten times a second throughout. This machine is noisy
// and small: read the per-replica figures, not the absolute ones.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/etcdsd/etcdsd/internal/benchdata"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/proc"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	var (
		coredns  = flag.String("coredns", "bin/coredns", "the CoreDNS build with etcdsd")
		etcd     = flag.String("etcd", "/usr/bin/etcd", "the etcd binary of the cluster and the proxy")
		replicas = flag.Int("replicas", 50, "CoreDNS processes with etcdsd")
		services = flag.Int("services", 10000, "services in the zone (three keys each on average)")
		window   = flag.Duration("window", 10*time.Second, "how long each state is measured")
		modes    = flag.String("modes", "direct,proxy", "how the replicas reach etcd: direct, proxy, or both")
		restarts = flag.Int("restarts", 1, "how many times every replica restarts at once, each a state of its own")
	)
	flag.Parse()
	h := &harness{coredns: *coredns, etcd: *etcd, n: *replicas, services: *services, window: *window, restarts: *restarts}
	if err := h.run(strings.Split(*modes, ",")); err != nil {
		log.Fatal(err)
	}
}

type harness struct {
	coredns, etcd, dir string
	n, services        int
	restarts           int
	window             time.Duration
	cluster            *devetcd.Cluster
	cli                *clientv3.Client
	proxy              *devetcd.Proxy
	relays             []*devetcd.Relay
	replicas           []*replica
	generation         int // how many times the replicas were started, for their file names
}

// replica is one CoreDNS process with etcdsd.
type replica struct {
	dns, ready, metrics int
	pprof               int // with REPLICAS_PPROF
	conf                string
	cmd                 *exec.Cmd
	exited              chan struct{} // closed when cmd has ended
	starts              int
}

// logFile is where the replica's current process logs.
func (r *replica) logFile() string {
	return fmt.Sprintf("%s.%d.log", strings.TrimSuffix(r.conf, ".Corefile"), r.starts)
}

// sample is what the cluster (and the proxy) had used up to one moment.
type sample struct {
	at       time.Time
	cpu      float64 // seconds of CPU of the members
	proxyCPU float64
	rss      int64 // KiB, of the members
	proxyRSS int64
	received float64 // gRPC messages the members received: requests, watch creations, progress requests
	ranges   float64 // range requests the members served
	watchers float64 // watchers the members hold
	streams  float64 // watch streams the members hold
	lists    float64 // complete lists the replicas made
	started  int     // the generation of the replicas counted (harness.generation)
}

func (h *harness) run(modes []string) error {
	for _, tool := range []string{h.coredns, h.etcd} {
		if _, err := os.Stat(tool); err != nil {
			return err
		}
	}
	var err error
	if h.coredns, err = filepath.Abs(h.coredns); err != nil {
		return err
	}
	if h.dir, err = os.MkdirTemp("", "etcdsd-replicas-"); err != nil {
		return err
	}
	if os.Getenv("REPLICAS_KEEP") == "" {
		defer os.RemoveAll(h.dir)
	}
	if h.cluster, err = devetcd.StartCluster(h.etcd, h.dir, 3); err != nil {
		return err
	}
	defer h.cluster.Close()
	if h.cli, err = h.cluster.Client(); err != nil {
		return err
	}
	defer h.cli.Close()
	n, err := benchdata.Load(h.cli, "/skydns", benchdata.Records("/skydns", h.services))
	if err != nil {
		return err
	}
	fmt.Printf("etcd %s, 3 members; %d replicas; zone of %d keys; windows of %v; 10 writes a second\n", h.cluster.Version, h.n, n, h.window)
	stopWrites := h.write()
	defer stopWrites()

	for _, mode := range modes {
		targets := h.cluster.Endpoints()
		if mode == "proxy" {
			if h.proxy, err = devetcd.StartProxy(h.etcd, h.cluster.Endpoints()); err != nil {
				return err
			}
			targets = []string{h.proxy.Endpoint}
		}
		// The replicas reach etcd (or the proxy) through relays, which cut them off.
		var eps []string
		for _, t := range targets {
			r, err := devetcd.StartRelay(strings.TrimPrefix(t, "http://"))
			if err != nil {
				return err
			}
			defer r.Close()
			h.relays = append(h.relays, r)
			eps = append(eps, "http://"+r.Addr)
		}
		endpoints := strings.Join(eps, " ")
		fmt.Printf("\n%s:\n\n| state | etcd CPU (cores) | proxy CPU | etcd RSS (MiB) | proxy RSS | etcd messages/s | ranges | watchers | watch streams | lists | all replicas current after |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n", mode)
		h.measure("no replicas", nil)
		if err := h.startReplicas(endpoints); err != nil {
			return err
		}
		h.measure("steady state", nil)
		h.measure("leader change", h.moveLeader)
		h.measure("compaction, every replica lists again", h.compactBehind)
		for i := range h.restarts {
			state := "every replica restarts at once"
			if h.restarts > 1 {
				state += fmt.Sprintf(" (%d of %d)", i+1, h.restarts)
			}
			h.measure(state, func() error {
				h.stopReplicas()
				return h.startReplicas(endpoints)
			})
		}
		h.stopReplicas()
		for _, r := range h.relays {
			r.Close()
		}
		h.relays = nil
		if h.proxy != nil {
			h.proxy.Stop()
			h.proxy = nil
		}
	}
	return nil
}

// write changes one key ten times a second until the returned function is called.
func (h *harness) write() func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			h.cli.Put(ctx, fmt.Sprintf("/skydns/local/example/churn/c%d", i%100), fmt.Sprintf(`{"host":"10.98.%d.%d"}`, i/256%256, i%256))
			cancel()
		}
	}()
	return func() { close(stop); <-done }
}

// measure runs event (when there is one), then measures one window, and prints a row: the
// rates over the window, and how long after the event every replica answered a change.
func (h *harness) measure(state string, event func() error) {
	before := h.sample()
	current := "-"
	if event != nil {
		if err := event(); err != nil {
			log.Printf("%s: %v", state, err)
		}
	}
	if len(h.replicas) > 0 {
		if d, err := h.converge(before.at); err != nil {
			current = err.Error()
		} else {
			current = fmt.Sprintf("%.2f s", d.Seconds())
		}
	}
	if rest := h.window - time.Since(before.at); rest > 0 {
		time.Sleep(rest)
	}
	after := h.sample()
	secs := after.at.Sub(before.at).Seconds()
	lists := after.lists - before.lists
	if after.started != before.started { // the replicas restarted, and their counts with them
		lists = after.lists
	}
	fmt.Printf("| %s | %.3f | %.3f | %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %s |\n", state,
		(after.cpu-before.cpu)/secs, (after.proxyCPU-before.proxyCPU)/secs, after.rss/1024, after.proxyRSS/1024,
		(after.received-before.received)/secs, after.ranges-before.ranges, after.watchers, after.streams,
		lists, current)
}

// converge puts a new address and returns how long after since every replica answers it.
func (h *harness) converge(since time.Time) (time.Duration, error) {
	want := fmt.Sprintf("10.97.%d.%d", time.Now().UnixNano()%250, time.Now().UnixNano()/1000%250)
	if _, err := h.cli.Put(context.Background(), "/skydns/local/example/probe", fmt.Sprintf(`{"host":%q}`, want)); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	for _, r := range h.replicas {
		addr := fmt.Sprintf("127.0.0.1:%d", r.dns)
		for {
			m, _, err := c.Exchange(new(dns.Msg).SetQuestion("probe.example.local.", dns.TypeA), addr)
			if err == nil && len(m.Answer) == 1 && m.Answer[0].(*dns.A).A.String() == want {
				break
			}
			if time.Now().After(deadline) {
				return 0, errors.New("not within 2 minutes")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return time.Since(since), nil
}

// moveLeader hands the leadership to another member.
func (h *harness) moveLeader() error {
	leader, err := h.cluster.Leader(h.cli)
	if err != nil {
		return err
	}
	members, err := h.cli.MemberList(context.Background())
	if err != nil {
		return err
	}
	st, err := h.cli.Status(context.Background(), h.cluster.Endpoint(leader))
	if err != nil {
		return err
	}
	var to uint64
	for _, m := range members.Members {
		if m.ID != st.Header.MemberId {
			to = m.ID
			break
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{h.cluster.Endpoint(leader)}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.MoveLeader(context.Background(), to)
	return err
}

// compactBehind cuts every replica off from etcd, writes and compacts past what they have
// seen, and lets them back: each finds its watch compacted and lists the zone again.
func (h *harness) compactBehind() error {
	for _, r := range h.relays {
		r.Cut(true)
	}
	defer func() {
		for _, r := range h.relays {
			r.Cut(false)
		}
	}()
	var rev int64
	for i := range 20 {
		resp, err := h.cli.Put(context.Background(), fmt.Sprintf("/skydns/local/example/frozen/f%d", i), `{"host":"10.96.0.1"}`)
		if err != nil {
			return err
		}
		rev = resp.Header.Revision
	}
	if _, err := h.cli.Compact(context.Background(), rev, clientv3.WithCompactPhysical()); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // the replicas retry meanwhile
	return nil
}

// startReplicas starts every replica at once and waits until all are ready.
func (h *harness) startReplicas(endpoints string) error {
	h.replicas = make([]*replica, h.n)
	h.generation++
	for i := range h.replicas {
		h.replicas[i] = &replica{conf: filepath.Join(h.dir, fmt.Sprintf("replica%d-%d.Corefile", i, h.generation))}
		if err := h.replicas[i].start(h.coredns, endpoints); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, r := range h.replicas {
		for {
			select {
			case <-r.exited:
				// A port found free was taken meanwhile (by another replica's connection
				// to etcd, say): start it on other ports.
				if err := r.start(h.coredns, endpoints); err != nil {
					return err
				}
			default:
			}
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", r.ready))
			last := fmt.Sprint(err)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				last = resp.Status + " " + string(body)
			}
			if time.Now().After(deadline) {
				// SIGABRT, with GOTRACEBACK=all, makes the Go runtime write every goroutine's
				// stack to the log (CoreDNS traps SIGQUIT and quits without).
				r.cmd.Process.Signal(syscall.SIGABRT)
				select {
				case <-r.exited:
				case <-time.After(5 * time.Second):
				}
				out, _ := os.ReadFile(r.logFile())
				return fmt.Errorf("replica on port %d not ready within 2 minutes (its /ready last answered %s); its log, with its goroutines:\n%s", r.dns, last, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// start starts the replica's CoreDNS on free ports.
func (r *replica) start(coredns, endpoints string) error {
	for _, p := range []*int{&r.dns, &r.ready, &r.metrics, &r.pprof} {
		port, err := devetcd.FreePort()
		if err != nil {
			return err
		}
		*p = port
	}
	debug := ""
	if os.Getenv("REPLICAS_PPROF") != "" {
		debug = fmt.Sprintf(" pprof 127.0.0.1:%d\n", r.pprof)
	}
	corefile := fmt.Sprintf("example.local:%d {\n bind 127.0.0.1\n ready 127.0.0.1:%d\n prometheus 127.0.0.1:%d\n%s etcdsd example.local {\n  endpoint %s\n }\n}\n",
		r.dns, r.ready, r.metrics, debug, endpoints)
	if err := os.WriteFile(r.conf, []byte(corefile), 0o600); err != nil {
		return err
	}
	r.starts++
	logs, err := os.Create(r.logFile())
	if err != nil {
		return err
	}
	defer logs.Close()
	r.cmd = exec.Command(coredns, "-conf", r.conf, "-quiet")
	r.cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	r.cmd.Stdout, r.cmd.Stderr = logs, logs
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(r.cmd, r.exited)
	return nil
}

func (h *harness) stopReplicas() {
	for _, r := range h.replicas {
		r.cmd.Process.Kill()
		<-r.exited
	}
	h.replicas = nil
}

func (h *harness) sample() sample {
	s := sample{at: time.Now(), started: h.generation}
	for i := range 3 {
		pid := h.cluster.Pid(i)
		s.cpu += proc.CPUSeconds(pid)
		s.rss += proc.RSS(pid)
		m, _ := devetcd.Scrape(h.cluster.Endpoint(i) + "/metrics")
		s.received += devetcd.Sum(m, "grpc_server_msg_received_total", nil)
		s.ranges += devetcd.Sum(m, "etcd_mvcc_range_total", nil)
		s.watchers += devetcd.Sum(m, "etcd_debugging_mvcc_watcher_total", nil)
		s.streams += devetcd.Sum(m, "etcd_debugging_mvcc_watch_stream_total", nil)
	}
	if h.proxy != nil {
		s.proxyCPU, s.proxyRSS = proc.CPUSeconds(h.proxy.Pid()), proc.RSS(h.proxy.Pid())
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, r := range h.replicas {
		wg.Go(func() {
			m, _ := devetcd.Scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.metrics))
			v := devetcd.Sum(m, "coredns_etcdsd_lists_total", nil)
			mu.Lock()
			s.lists += v
			mu.Unlock()
		})
	}
	wg.Wait()
	return s
}
