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

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type config struct {
	name  string
	block string // the plugin lines of the server block
	port  int
	cmd   *exec.Cmd
	runs  []result
	rss   int64 // KiB, after the runs
}

type result struct {
	qps, meanMs, p99Ms float64
	lost, sent         int
	ranges             float64 // etcd range requests during the run
}

func main() {
	var (
		services = flag.Int("services", 10000, "services in the data set (1 to 5 instances each)")
		duration = flag.Duration("duration", 10*time.Second, "length of one dnsperf run")
		rounds   = flag.Int("rounds", 3, "rounds of runs, each configuration once per round")
		coredns  = flag.String("coredns", "bin/coredns", "the CoreDNS build with etcdsd")
		only     = flag.String("only", "", "comma-separated configurations to run (default all)")
		pprof    = flag.String("pprof", "", "serve Go profiles of the etcdsd CoreDNS on this address, to profile a run")
	)
	flag.Parse()
	if err := run(*services, *duration, *rounds, *coredns, *only, *pprof); err != nil {
		log.Fatal(err)
	}
}

func run(services int, duration time.Duration, rounds int, coredns, only, pprof string) error {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return errors.New("dnsperf not found: apt-get install dnsperf")
	}
	coredns, err := filepath.Abs(coredns)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "etcdsd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The server side (etcd here, CoreDNS below) on the first core, dnsperf on the second.
	pin := runtime.NumCPU() >= 2
	if pin {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", "0", strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			log.Printf("not pinning (%v: %s)", err, out)
			pin = false
		}
	}

	etcd, err := devetcd.Start(filepath.Join(dir, "etcd"), 0)
	if err != nil {
		return err
	}
	defer etcd.Close()
	cli, err := etcd.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	start := time.Now()
	n, err := load(cli, benchdata.Records("/skydns", services))
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

	endpoint := "endpoint " + etcd.Endpoint
	configs := []*config{
		{name: "etcd", block: "etcd example.local {\n  " + endpoint + "\n }"},
		{name: "etcd+cache", block: "cache\n etcd example.local {\n  " + endpoint + "\n }"},
		{name: "file", block: "file " + zone + " example.local"},
		{name: "whoami", block: "whoami"},
		{name: "etcdsd", block: "etcdsd example.local {\n  " + endpoint + "\n }"},
	}
	if pprof != "" {
		configs[len(configs)-1].block += "\n pprof " + pprof
	}
	if only != "" {
		configs = slices.DeleteFunc(configs, func(c *config) bool { return !slices.Contains(strings.Split(only, ","), c.name) })
	}
	for _, c := range configs {
		if err := c.start(dir, coredns, pin); err != nil {
			return err
		}
		defer c.stop()
	}

	dnsperf := func(c *config, d time.Duration) (result, error) {
		before := rangeTotal()
		r, err := runDNSPerf(c.port, queries, d, pin)
		r.ranges = rangeTotal() - before
		return r, err
	}
	for _, c := range configs { // warm up: caches, connections, the Go runtime
		if _, err := dnsperf(c, time.Second); err != nil {
			return err
		}
	}
	for round := range rounds {
		for _, c := range configs {
			r, err := dnsperf(c, duration)
			if err != nil {
				return err
			}
			c.runs = append(c.runs, r)
			log.Printf("round %d %-10s %8.0f QPS", round+1, c.name, r.qps)
		}
	}
	for _, c := range configs {
		c.rss = rss(c.cmd.Process.Pid)
	}
	report(configs, services, duration, rounds, pin)
	return nil
}

// load puts the records, those marked leased under one lease per service.
func load(cli *clientv3.Client, records []benchdata.Record) (int, error) {
	ctx := context.Background()
	leases := map[string]clientv3.LeaseID{}
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		ops = ops[:0]
		return err
	}
	for _, r := range records {
		var opts []clientv3.OpOption
		if r.Leased {
			svc := r.Key[:strings.LastIndex(r.Key, "/")]
			id, ok := leases[svc]
			if !ok {
				l, err := cli.Grant(ctx, 3600)
				if err != nil {
					return 0, err
				}
				id, leases[svc] = l.ID, l.ID
			}
			opts = append(opts, clientv3.WithLease(id))
		}
		ops = append(ops, clientv3.OpPut(r.Key, r.Value, opts...))
		if len(ops) == 128 {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	return len(records), flush()
}

func (c *config) start(dir, coredns string, pin bool) error {
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
	if err := c.cmd.Start(); err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	q := new(dns.Msg).SetQuestion("_svc000000._tcp.example.local.", dns.TypeSRV)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, err := dns.Exchange(q, addr); err == nil && r.Rcode != dns.RcodeServerFailure {
			return nil
		}
	}
	return fmt.Errorf("%s: CoreDNS not answering on %s", c.name, addr)
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
	}
	return r, nil
}

// rangeTotal reads the embedded etcd's count of range requests.
func rangeTotal() float64 {
	mfs, _ := prometheus.DefaultGatherer.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "etcd_mvcc_range_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return 0
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func report(configs []*config, services int, duration time.Duration, rounds int, pin bool) {
	where := "CoreDNS and etcd on core 0, dnsperf on core 1 (taskset)"
	if !pin {
		where = "not pinned"
	}
	fmt.Printf("\n%d services, %d rounds of %v per configuration in alternation, %s; medians over rounds\n\n",
		services, rounds, duration, where)
	fmt.Printf("| configuration | QPS | mean latency (ms) | p99 latency (ms) | lost | RSS (MiB) | etcd ranges per 1000 queries |\n")
	fmt.Printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	qps := map[string]float64{}
	for _, c := range configs {
		q := median(c.runs, func(r result) float64 { return r.qps })
		qps[c.name] = q
		lost, sent, ranges := 0, 0, 0.0
		for _, r := range c.runs {
			lost, sent, ranges = lost+r.lost, sent+r.sent, ranges+r.ranges
		}
		fmt.Printf("| %s | %.0f | %.3f | %.3f | %d | %.0f | %.2f |\n", c.name, q,
			median(c.runs, func(r result) float64 { return r.meanMs }),
			median(c.runs, func(r result) float64 { return r.p99Ms }),
			lost, float64(c.rss)/1024, 1000*ranges/float64(max(sent, 1)))
	}
	fmt.Println()
	for _, other := range []string{"etcd", "etcd+cache", "file", "whoami"} {
		if qps["etcdsd"] > 0 && qps[other] > 0 {
			fmt.Printf("etcdsd/%s: %.2f\n", other, qps["etcdsd"]/qps[other])
		}
	}
}
