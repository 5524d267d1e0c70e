// Command bench measures etcdsd against the built-in etcd plugin (alone and behind cache),
// the file plugin serving the same answers from memory, and whoami (CoreDNS's own ceiling),
// all in one run of one binary, with dnsperf sending the same query mix to each in turn.
// This machine is noisy: read the ratios, not the absolute numbers.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/etcdsd/etcdsd/internal/benchdata"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/proc"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type config struct {
	name  string
	block string // the plugin lines of the server block
	port  int
	cmd   *exec.Cmd
	runs  []result
	rss   int64         // KiB, after the runs
	wait  time.Duration // how long it may take to answer after its start; 0: 30 s
}

type result struct {
	qps, meanMs, p99Ms, p999Ms float64
	lost, sent                 int
	ranges                     float64 // etcd range requests during the run
}

func main() {
	var (
		services = flag.Int("services", 10000, "services in the data set (1 to 5 instances each)")
		duration = flag.Duration("duration", 10*time.Second, "length of one dnsperf run")
		rounds   = flag.Int("rounds", 3, "rounds of runs, each configuration once per round")
		coredns  = flag.String("coredns", "bin/coredns", "the CoreDNS build with etcdsd")
		only     = flag.String("only", "", "comma-separated configurations to run (default all)")
		pprof    = flag.String("pprof", "", "serve Go profiles of the etcdsd CoreDNS on this address, to profile a run")
		changes  = flag.Int("propagation", 1000, "puts and deletes to time from etcd to DNS (0: none)")
		scale    = flag.String("scale", "10000,100000", "record counts to time etcdsd's first complete list at")
		zipf     = flag.Int("zipf", 0, "records for the Zipf mix (0: none): etcdsd, file and whoami asked a million questions with Zipf's law")
		external = flag.String("etcd", "", "the endpoint of an etcd to use, such as Debian's etcd-server (default: one the bench starts, of bin/etcd); data already there is not loaded again")
	)
	flag.Parse()
	b := &bench{services: *services, duration: *duration, rounds: *rounds, coredns: *coredns,
		only: *only, pprof: *pprof, changes: *changes, scale: *scale, external: *external, zipf: *zipf}
	if err := b.run(); err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	services, rounds, changes int
	zipf                      int
	duration                  time.Duration
	coredns, only, pprof      string
	scale, external           string
	metrics                   string // etcd's metrics URL
	etcdPid                   int    // the etcd the bench started; 0 for an external one
}

func (b *bench) run() error {
	services, only, pprof := b.services, b.only, b.pprof
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return errors.New("dnsperf not found: apt-get install dnsperf")
	}
	coredns, err := filepath.Abs(b.coredns)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "etcdsd-bench-")
	if err != nil {
		return err
	}
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(dir)
	}

	// The server side (etcd here, CoreDNS below) on the first core, dnsperf on the second.
	pin := runtime.NumCPU() >= 2
	if pin {
		if out, err := b.pinSelf("0"); err != nil {
			log.Printf("not pinning (%v: %s)", err, out)
			pin = false
		}
	}

	endpoint := b.external
	if endpoint == "" {
		etcd, err := devetcd.Start(filepath.Join(dir, "etcd"), 0)
		if err != nil {
			return err
		}
		defer etcd.Close()
		endpoint, b.etcdPid = etcd.Endpoint, etcd.Pid()
	}
	b.metrics = strings.TrimSuffix(endpoint, "/") + "/metrics"
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	start := time.Now()
	n, err := benchdata.Load(cli, "/skydns", benchdata.Records("/skydns", services))
	if err != nil {
		return err
	}
	log.Printf("loaded %d records of %d services into etcd in %v", n, services, time.Since(start).Round(time.Millisecond))

	zone := filepath.Join(dir, "example.local.zone")
	queries := filepath.Join(dir, "queries.txt")
	if err := os.WriteFile(zone, []byte(benchdata.ZoneFile(services)), 0o600); err != nil {
		return err
	}
	var qb strings.Builder
	for _, q := range benchdata.Queries(services) {
		fmt.Fprintf(&qb, "%s %s\n", q.Name, q.Type)
	}
	if err := os.WriteFile(queries, []byte(qb.String()), 0o600); err != nil {
		return err
	}

	at := "endpoint " + endpoint
	configs := []*config{
		{name: "etcd", block: "etcd example.local {\n  " + at + "\n }"},
		{name: "etcd+cache", block: "cache\n etcd example.local {\n  " + at + "\n }"},
		{name: "file", block: "file " + zone + " example.local"},
		{name: "whoami", block: "whoami"},
		{name: "etcdsd", block: "etcdsd example.local {\n  " + at + "\n }"},
	}
	if pprof != "" {
		configs[len(configs)-1].block += "\n pprof " + pprof
	}
	if only != "" {
		configs = slices.DeleteFunc(configs, func(c *config) bool { return !slices.Contains(strings.Split(only, ","), c.name) })
	}
	defer stopAll(configs)
	if err := startAll(configs, dir, coredns, pin); err != nil {
		return err
	}
	title := fmt.Sprintf("%d services, %d distinct questions", services, len(benchdata.Queries(services)))
	if err := b.compare(title, queries, configs, pin); err != nil {
		return err
	}

	for _, c := range configs {
		if c.name == "etcdsd" && b.changes > 0 {
			if err := propagation(cli, c.port, b.changes); err != nil {
				return err
			}
		}
	}
	// The first lists share every core between etcd (in this process) and CoreDNS, which
	// inherits this process's cores.
	if pin {
		if out, err := b.pinSelf(fmt.Sprintf("0-%d", runtime.NumCPU()-1)); err != nil {
			return fmt.Errorf("unpinning: %v: %s", err, out)
		}
	}
	for _, f := range strings.Split(b.scale, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			if err := firstList(cli, endpoint, dir, coredns, n); err != nil {
				return err
			}
		}
	}
	if b.zipf > 0 {
		if pin {
			if out, err := b.pinSelf("0"); err != nil {
				return fmt.Errorf("pinning: %v: %s", err, out)
			}
		}
		return b.zipfMix(cli, endpoint, dir, coredns, pin)
	}
	return nil
}

// pinSelf puts every thread of this process, and so the processes it starts, and the etcd
// it started, on cpus.
func (b *bench) pinSelf(cpus string) ([]byte, error) {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil || b.etcdPid == 0 {
		return out, err
	}
	return exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(b.etcdPid)).CombinedOutput()
}

// zipfMix compares etcdsd, file and whoami on b.zipf records (b.zipf/3 services) and a
// million address questions about their instances, Zipf-distributed with exponent 1.1.
func (b *bench) zipfMix(cli *clientv3.Client, endpoint, dir, coredns string, pin bool) error {
	services := b.zipf / 3
	path := fmt.Sprintf("/scale%d", b.zipf)
	if _, err := benchdata.Load(cli, path, benchdata.Records(path, services)); err != nil {
		return err
	}
	zone := filepath.Join(dir, "zipf.zone")
	if err := os.WriteFile(zone, []byte(benchdata.ZoneFile(services)), 0o600); err != nil {
		return err
	}
	qs := benchdata.Zipf(services, 1_000_000, 1.1, 1)
	distinct := map[benchdata.Query]bool{}
	var qb strings.Builder
	for _, q := range qs {
		distinct[q] = true
		fmt.Fprintf(&qb, "%s %s\n", q.Name, q.Type)
	}
	queries := filepath.Join(dir, "zipf.txt")
	if err := os.WriteFile(queries, []byte(qb.String()), 0o600); err != nil {
		return err
	}
	configs := []*config{
		{name: "file", block: "file " + zone + " example.local", wait: 10 * time.Minute}, // parsing the zone file
		{name: "whoami", block: "whoami"},
		{name: "etcdsd", block: fmt.Sprintf("etcdsd example.local {\n  path %s\n  endpoint %s\n }", path, endpoint), wait: time.Minute},
	}
	title := fmt.Sprintf("Zipf mix (s = 1.1): %d records (%d services), %d questions, %d distinct", b.zipf, services, len(qs), len(distinct))
	defer stopAll(configs)
	if err := startAll(configs, dir, coredns, pin); err != nil {
		return err
	}
	return b.compare(title, queries, configs, pin)
}

// startAll starts the configurations; the caller stops them.
func startAll(configs []*config, dir, coredns string, pin bool) error {
	for _, c := range configs {
		if err := c.start(dir, coredns, pin); err != nil {
			return err
		}
	}
	return nil
}

func stopAll(configs []*config) {
	for _, c := range configs {
		if c.cmd != nil {
			c.stop()
		}
	}
}

// compare runs dnsperf with the queries against each of the running configurations in
// turn, b.rounds times, and reports the medians.
func (b *bench) compare(title, queries string, configs []*config, pin bool) error {

	dnsperf := func(c *config, d time.Duration) (result, error) {
		before := b.rangeTotal()
		r, err := runDNSPerf(c.port, queries, d, pin)
		r.ranges = b.rangeTotal() - before
		return r, err
	}
	for _, c := range configs { // warm up: caches, connections, the Go runtime
		if _, err := dnsperf(c, time.Second); err != nil {
			return err
		}
	}
	for round := range b.rounds {
		for _, c := range configs {
			r, err := dnsperf(c, b.duration)
			if err != nil {
				return err
			}
			c.runs = append(c.runs, r)
			log.Printf("round %d %-10s %8.0f QPS", round+1, c.name, r.qps)
		}
	}
	for _, c := range configs {
		c.rss = proc.RSS(c.cmd.Process.Pid)
	}
	report(title, configs, b.duration, b.rounds, pin)
	return nil
}

// propagation times n puts and n deletes from the write's return until etcdsd answers
// the new state, asking it as fast as it answers.
func propagation(cli *clientv3.Client, port, n int) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wait := func(name string, present bool) (time.Duration, error) {
		start := time.Now()
		q := new(dns.Msg).SetQuestion(name, dns.TypeA)
		for time.Since(start) < 10*time.Second {
			r, err := dns.Exchange(q, addr)
			if err == nil && (len(r.Answer) > 0) == present {
				return time.Since(start), nil
			}
		}
		return 0, fmt.Errorf("%s: no change in DNS within 10s", name)
	}
	var puts, dels []float64
	for i := range n {
		key, name := fmt.Sprintf("/skydns/local/example/prop/p%d", i), fmt.Sprintf("p%d.prop.example.local.", i)
		if _, err := cli.Put(context.Background(), key, `{"host":"10.99.0.1"}`); err != nil {
			return err
		}
		d, err := wait(name, true)
		if err != nil {
			return err
		}
		puts = append(puts, float64(d.Microseconds())/1000)
		if _, err := cli.Delete(context.Background(), key); err != nil {
			return err
		}
		if d, err = wait(name, false); err != nil {
			return err
		}
		dels = append(dels, float64(d.Microseconds())/1000)
	}
	slices.Sort(puts)
	slices.Sort(dels)
	pct := func(v []float64, p int) float64 { return v[min(len(v)-1, len(v)*p/100)] }
	fmt.Printf("\npropagation over %d changes, from the write's return to the new answer (ms): put p50 %.3f p99 %.3f max %.3f; delete p50 %.3f p99 %.3f max %.3f\n",
		n, pct(puts, 50), pct(puts, 99), puts[len(puts)-1], pct(dels, 50), pct(dels, 99), dels[len(dels)-1])
	return nil
}

// firstList loads n records under a path of their own and times a fresh CoreDNS with
// etcdsd from its start until its ready endpoint says ready: start-up plus the first
// complete list.
func firstList(cli *clientv3.Client, endpoint, dir, coredns string, n int) error {
	path := fmt.Sprintf("/scale%d", n)
	start := time.Now()
	if _, err := benchdata.Load(cli, path, benchdata.Records(path, n/3)); err != nil {
		return err
	}
	loaded := time.Since(start)
	readyPort, err := devetcd.FreePort()
	if err != nil {
		return err
	}
	c := &config{name: fmt.Sprintf("scale%d", n), block: fmt.Sprintf("etcdsd example.local {\n  path %s\n  endpoint %s\n }\n ready 127.0.0.1:%d", path, endpoint, readyPort)}
	start = time.Now()
	if err := c.startProcess(dir, coredns, false); err != nil {
		return err
	}
	defer c.stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort)
	for time.Since(start) < 5*time.Minute {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Printf("first list of %d records (%d services): CoreDNS ready %v after its start (loading etcd took %v); RSS %d MiB\n",
					n, n/3, time.Since(start).Round(time.Millisecond), loaded.Round(time.Second), proc.RSS(c.cmd.Process.Pid)/1024)
				if b, err := os.ReadFile(filepath.Join(dir, c.name+".log")); err == nil {
					for _, line := range strings.Split(string(b), "\n") {
						if strings.Contains(line, "Listed") {
							fmt.Println("  etcdsd:", strings.TrimSpace(line))
						}
					}
				}
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s: not ready after 5 minutes", c.name)
}

func (c *config) start(dir, coredns string, pin bool) error {
	if err := c.startProcess(dir, coredns, pin); err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", c.port)
	if c.wait == 0 {
		c.wait = 30 * time.Second
	}
	q := new(dns.Msg).SetQuestion("_svc000000._tcp.example.local.", dns.TypeSRV)
	for deadline := time.Now().Add(c.wait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// Data in the answer (whoami's is in the additional section): the zone is loaded.
		if r, err := dns.Exchange(q, addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer)+len(r.Extra) > 0 {
			return nil
		}
	}
	return fmt.Errorf("%s: CoreDNS not answering on %s within %v", c.name, addr, c.wait)
}

// startProcess writes the configuration's Corefile and starts CoreDNS on it.
func (c *config) startProcess(dir, coredns string, pin bool) error {
	port, err := devetcd.FreePort()
	if err != nil {
		return err
	}
	c.port = port
	conf := filepath.Join(dir, c.name+".Corefile")
	corefile := fmt.Sprintf("example.local:%d {\n bind 127.0.0.1\n %s\n}\n", port, c.block)
	if err := os.WriteFile(conf, []byte(corefile), 0o600); err != nil {
		return err
	}
	args := []string{coredns, "-conf", conf, "-quiet"}
	if pin {
		args = append([]string{"taskset", "-c", "0"}, args...)
	}
	c.cmd = exec.Command(args[0], args[1:]...)
	logs, err := os.Create(filepath.Join(dir, c.name+".log"))
	if err != nil {
		return err
	}
	c.cmd.Stdout, c.cmd.Stderr = logs, logs
	return c.cmd.Start()
}

func (c *config) stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// runDNSPerf runs dnsperf verbosely, to read every query's latency for the percentile.
// Its output goes to a file and is read afterwards, so that reading it takes no CPU from
// the server during the run.
func runDNSPerf(port int, queries string, d time.Duration, pin bool) (result, error) {
	args := []string{"dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queries,
		"-l", fmt.Sprintf("%.0f", d.Seconds()), "-c", "4", "-q", "200", "-v"}
	if pin {
		args = append([]string{"taskset", "-c", "1"}, args...)
	}
	out, err := os.CreateTemp("", "dnsperf-")
	if err != nil {
		return result{}, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("dnsperf: %w", err)
	}
	if _, err := out.Seek(0, 0); err != nil {
		return result{}, err
	}
	var (
		r         result
		latencies []float64
	)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch f := strings.Fields(line); {
		case strings.HasPrefix(line, "> ") && len(f) >= 5:
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				latencies = append(latencies, v*1000)
			}
		case strings.HasPrefix(line, "Queries per second:"):
			r.qps, _ = strconv.ParseFloat(f[3], 64)
		case strings.HasPrefix(line, "Queries sent:"):
			r.sent, _ = strconv.Atoi(f[2])
		case strings.HasPrefix(line, "Queries lost:"):
			r.lost, _ = strconv.Atoi(f[2])
		case strings.HasPrefix(line, "Average Latency (s):"):
			v, _ := strconv.ParseFloat(f[3], 64)
			r.meanMs = v * 1000
		}
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		r.p99Ms = latencies[len(latencies)*99/100]
		r.p999Ms = latencies[len(latencies)*999/1000]
	}
	return r, nil
}

// rangeTotal reads etcd's count of range requests from its metrics endpoint.
func (b *bench) rangeTotal() float64 {
	m, _ := devetcd.Scrape(b.metrics)
	return devetcd.Sum(m, "etcd_mvcc_range_total", nil)
}

func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func report(title string, configs []*config, duration time.Duration, rounds int, pin bool) {
	where := "CoreDNS and etcd on core 0, dnsperf on core 1 (taskset)"
	if !pin {
		where = "not pinned"
	}
	fmt.Printf("\n%s; %d rounds of %v per configuration in alternation, %s; medians over rounds\n\n",
		title, rounds, duration, where)
	fmt.Printf("| configuration | QPS | mean latency (ms) | p99 latency (ms) | p999 latency (ms) | lost | RSS (MiB) | etcd ranges per 1000 queries |\n")
	fmt.Printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	qps := map[string]float64{}
	for _, c := range configs {
		q := median(c.runs, func(r result) float64 { return r.qps })
		qps[c.name] = q
		lost, sent, ranges := 0, 0, 0.0
		for _, r := range c.runs {
			lost, sent, ranges = lost+r.lost, sent+r.sent, ranges+r.ranges
		}
		fmt.Printf("| %s | %.0f | %.3f | %.3f | %.3f | %d | %.0f | %.2f |\n", c.name, q,
			median(c.runs, func(r result) float64 { return r.meanMs }),
			median(c.runs, func(r result) float64 { return r.p99Ms }),
			median(c.runs, func(r result) float64 { return r.p999Ms }),
			lost, float64(c.rss)/1024, 1000*ranges/float64(max(sent, 1)))
	}
	fmt.Println()
	for _, other := range []string{"etcd", "etcd+cache", "file", "whoami"} {
		if qps["etcdsd"] > 0 && qps[other] > 0 {
			fmt.Printf("etcdsd/%s: %.2f\n", other, qps["etcdsd"]/qps[other])
		}
	}
}
