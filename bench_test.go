package etcdsd

import (
	"context"
	"flag"
	"fmt"
	"github.com/etcdsd/etcdsd/internal/proc"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/file"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/etcdsd/etcdsd/internal/benchdata"
	"github.com/etcdsd/etcdsd/internal/devetcd"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const benchServices = 10000

func benchMsgs(n int) []*dns.Msg {
	var msgs []*dns.Msg
	for _, q := range benchdata.Queries(n) {
		msgs = append(msgs, new(dns.Msg).SetQuestion(q.Name, dns.StringToType[q.Type]))
	}
	return msgs
}

func benchPlugin(b *testing.B, n int) *Etcdsd {
	var kvs [][2]string
	for _, r := range benchdata.Records("/skydns", n) {
		kvs = append(kvs, [2]string{r.Key, r.Value})
	}
	return fixturePlugin(b, "etcdsd example.local", kvs)
}

func benchFile(b *testing.B, n int) plugin.Handler {
	z, err := file.Parse(strings.NewReader(benchdata.ZoneFile(n)), benchdata.Origin, "bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	return file.File{Zones: file.Zones{Z: map[string]*file.Zone{benchdata.Origin: z}, Names: []string{benchdata.Origin}}}
}

// run sends the query mix through h, one query per iteration.
func run(b *testing.B, h plugin.Handler, msgs []*dns.Msg) {
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		h.ServeDNS(ctx, rec, msgs[i%len(msgs)])
		i++
	}
}

// The query mix of make bench at 10,000 services, through etcdsd and through the file
// plugin holding the same answers; compare the two in one run.
func BenchmarkQueryMix(b *testing.B) {
	msgs := benchMsgs(benchServices)
	b.Run("etcdsd", func(b *testing.B) { run(b, benchPlugin(b, benchServices), msgs) })
	b.Run("file", func(b *testing.B) { run(b, benchFile(b, benchServices), msgs) })
}

// Names high in the tree: bounded by max_answers, not by the zone, at 10k and 100k
// services. Every query is answered afresh from the index, not from a prepared answer.
func BenchmarkHighNames(b *testing.B) {
	for _, services := range []int{10_000, 100_000} {
		e := benchPlugin(b, services)
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"example.local.", dns.TypeA}, {"_tcp.example.local.", dns.TypeSRV}} {
			b.Run(fmt.Sprintf("services=%d/%s", services, q.name), func(b *testing.B) {
				m := new(dns.Msg).SetQuestion(q.name, q.qtype)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					// A fresh snapshot each time, so that no prepared answer helps.
					w := e.watchers[0]
					w.current.Store(w.b.Snapshot(w.seq, nil))
					e.ServeDNS(ctx, dnstest.NewRecorder(&test.ResponseWriter{}), m)
				}
			})
		}
	}
}

// The benchmark compares like with like: etcdsd and the file plugin give the same answers
// for the data set.
func TestBenchDataSameAnswers(t *testing.T) {
	const n = 60
	var kvs [][2]string
	for _, r := range benchdata.Records("/skydns", n) {
		kvs = append(kvs, [2]string{r.Key, r.Value})
	}
	e := fixturePlugin(t, "etcdsd example.local", kvs)
	z, err := file.Parse(strings.NewReader(benchdata.ZoneFile(n)), benchdata.Origin, "bench", 0)
	if err != nil {
		t.Fatal(err)
	}
	f := file.File{Zones: file.Zones{Z: map[string]*file.Zone{benchdata.Origin: z}, Names: []string{benchdata.Origin}}}
	answered := 0
	for _, m := range benchMsgs(n) {
		ours, theirs := dnstest.NewRecorder(&test.ResponseWriter{}), dnstest.NewRecorder(&test.ResponseWriter{})
		e.ServeDNS(context.Background(), ours, m)
		f.ServeDNS(context.Background(), theirs, m)
		if ours.Msg.Rcode != theirs.Msg.Rcode || rrset(ours.Msg.Answer) != rrset(theirs.Msg.Answer) || rrset(ours.Msg.Extra) != rrset(theirs.Msg.Extra) {
			t.Fatalf("%s: etcdsd\n%v\nfile\n%v", m.Question[0].String(), ours.Msg, theirs.Msg)
		}
		if len(ours.Msg.Answer) > 0 {
			answered++
		}
	}
	if answered == 0 {
		t.Fatal("no query had an answer")
	}
}

func rrset(rrs []dns.RR) string {
	s := make([]string, len(rrs))
	for i, rr := range rrs {
		s[i] = rr.String()
	}
	slices.Sort(s)
	return strings.Join(s, "\n")
}

// Index memory per record and query cost as the data grows: 10k, 100k and 1M records
// (one to five instances per service, three on average). Memory is the Go heap after
// garbage collection, with the decoded index and nothing else built. Queries go two ways:
// the same 20,000 questions at every size (the prepared answers hold them all), and the
// whole mix, which at 100k records and more outgrows the prepared answers.
func BenchmarkScale(b *testing.B) {
	for _, records := range []int{10_000, 100_000, 1_000_000} {
		services := records / 3
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e := benchPlugin(b, services)
		runtime.GC()
		runtime.ReadMemStats(&after)
		perRecord := float64(after.HeapAlloc-before.HeapAlloc) / float64(e.watchers[0].snapshot().Len())
		all := benchMsgs(services)
		for _, mix := range []struct {
			name string
			msgs []*dns.Msg
		}{{"same-20000", all[:min(len(all), 20000)]}, {"all", all}} {
			b.Run(fmt.Sprintf("records=%d/queries=%s", records, mix.name), func(b *testing.B) {
				run(b, e, mix.msgs)
				// After the loop: b.Loop drops metrics reported before it.
				b.ReportMetric(perRecord, "heap-B/record")
			})
		}
		runtime.KeepAlive(e)
	}
}

// sizes reads a comma-separated list of sizes of a -bench flag.
func sizes(b *testing.B, list string) []int {
	var out []int
	for _, field := range strings.Split(list, ",") {
		n, err := strconv.Atoi(field)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

var checkSizes = flag.String("bench.check", "10000,100000", "zone sizes of BenchmarkSelfCheck, in keys")

// The self-check's cost: one keys-only read of the zone at the index's revision and the
// comparison with the index, by zone size. A complete list of the same zone, for scale.
func BenchmarkSelfCheck(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes(b, *checkSizes) {
		root := fmt.Sprintf("/check%d/local/example", n)
		ops := make([]clientv3.Op, n)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprintf("%s/svc%d/i%d", root, i/3, i%3), fmt.Sprintf(`{"host":"10.%d.%d.%d","port":80}`, i>>16&255, i>>8&255, i&255))
		}
		if err := devetcd.Commit(ctx, testEtcd.Client(), ops); err != nil {
			b.Fatal(err)
		}
		w := newWatcher(watchConfig{root: root})
		c := lend(testEtcd.Client())
		if err := w.list(ctx, c, listStart); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("keys=%d/list", n), func(b *testing.B) {
			for b.Loop() {
				if err := w.list(ctx, c, listStart); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("keys=%d/check", n), func(b *testing.B) {
			for b.Loop() {
				if d, err := w.compare(ctx, c, w.snapshot()); err != nil || d.count != 0 {
					b.Fatal(d, err)
				}
			}
		})
		if _, err := testEtcd.Client().Delete(ctx, root+"/", clientv3.WithPrefix()); err != nil {
			b.Fatal(err)
		}
	}
}

var transferSizes = flag.String("bench.transfer", "1000,10000", "zone sizes of BenchmarkTransfer, in services (about 3 keys each)")

// A zone transfer of the whole zone, streamed record batch by batch: its time, the
// records it sends, what it allocates, and the peak resident set of the process while it
// runs (the index included), at each of -bench.transfer services.
func BenchmarkTransfer(b *testing.B) {
	for _, services := range sizes(b, *transferSizes) {
		e := benchPlugin(b, services)
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			b.ReportAllocs()
			debug.FreeOSMemory() // what the benchmarks before held goes back to the kernel
			if err := proc.ResetPeak(os.Getpid()); err != nil {
				b.Log("peak RSS not measured:", err)
			}
			records := 0
			for b.Loop() {
				ch, err := e.Transfer(benchdata.Origin, 0)
				if err != nil {
					b.Fatal(err)
				}
				records = 0
				for rrs := range ch {
					records += len(rrs)
				}
			}
			b.ReportMetric(float64(records), "records")
			b.ReportMetric(float64(e.watchers[0].snapshot().Len()), "keys")
			b.ReportMetric(float64(proc.PeakRSS(os.Getpid()))/1024, "peak-RSS-MiB")
		})
	}
}
