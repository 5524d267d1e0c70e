// Package compat proves etcdsd a drop-in for CoreDNS's etcd plugin: the same data, served
// by both in one in-process CoreDNS (two server blocks on two loopback ports that differ
// only in the plugin's name), must give the same answer to every query.
package compat

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/erratic"
	_ "github.com/coredns/coredns/plugin/etcd"
	_ "github.com/coredns/coredns/plugin/hosts"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	_ "github.com/etcdsd/etcdsd"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/testserver"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	testEtcd devetcd.Shared
	verbose  = flag.Bool("compat.verbose", false, "log every data set's query count")
)

func TestMain(m *testing.M) {
	flag.Parse()
	clog.Discard()
	dnsserver.Quiet = true
	os.Exit(devetcd.RunTests(m, &testEtcd))
}

// record is one etcd key under a data set's path, optionally on a lease of leaseTTL seconds.
type record struct {
	key      string // below the path, for example "local/example/x"
	value    string
	leaseTTL int64
}

// dataset is what both plugins serve: the zones and options of the stanza and the records.
type dataset struct {
	name    string
	zones   string
	options []string
	records []record
	queries []query // besides those derived from the records
	// servfail marks data that makes the etcd plugin fail some queries; elsewhere a
	// SERVFAIL is an error, as two SERVFAILs compare equal and prove nothing.
	servfail bool
}

type query struct {
	name  string
	qtype uint16
	edns  bool
}

// pair is one CoreDNS instance serving a data set twice: through etcd and through etcdsd.
type pair struct {
	inst          *caddy.Instance
	builtin, ours string
	origins       []string // the zones served
	fallsThrough  bool     // the stanzas pass NXDOMAIN on to the next plugin
	path          string   // the etcd path the zones are under
	cli           *clientv3.Client
	deviations    map[string]int // differences explained by a documented deviation, by name
}

// target is the etcd a pair serves from, and a client of it for the test's writes.
type target struct {
	endpoints []string
	cli       *clientv3.Client
}

// startPair loads ds under path into the package's etcd and starts both server blocks. It
// returns when etcdsd's index holds every record.
func startPair(t *testing.T, ds dataset, path string) *pair {
	t.Helper()
	return startPairOn(t, ds, path, target{[]string{testEtcd.Server().Endpoint}, testEtcd.Client()}, nil)
}

// startPairOn is startPair on etcd e, with extra lines for the etcdsd stanza alone.
func startPairOn(t *testing.T, ds dataset, path string, e target, ours []string) *pair {
	t.Helper()
	ctx := context.Background()
	var rev int64
	for _, r := range ds.records {
		var opts []clientv3.OpOption
		if r.leaseTTL > 0 {
			l, err := e.cli.Grant(ctx, r.leaseTTL)
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, clientv3.WithLease(l.ID))
		}
		resp, err := e.cli.Put(ctx, path+"/"+r.key, r.value, opts...)
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}

	block := func(port int, plugin string) string {
		var b strings.Builder
		fmt.Fprintf(&b, ".:%d {\n bind 127.0.0.1\n", port)
		// Names outside the etcd zones, for CNAME, SRV and MX targets that leave the zone.
		b.WriteString(" hosts {\n  192.0.2.10 ext.example.org\n  2001:db8::10 ext.example.org\n  fallthrough\n }\n")
		fmt.Fprintf(&b, " %s %s {\n  path %s\n  endpoint %s\n", plugin, ds.zones, path, strings.Join(e.endpoints, " "))
		options := ds.options
		if plugin == "etcdsd" {
			options = append(slices.Clone(options), ours...)
		}
		for _, o := range options {
			fmt.Fprintf(&b, "  %s\n", o)
		}
		// A deterministic next plugin, for fallthrough.
		b.WriteString(" }\n erratic {\n  drop 0\n }\n}\n")
		return b.String()
	}
	inst, ports := testserver.Start(t, 2, func(p []int) string { return block(p[0], "etcd") + block(p[1], "etcdsd") })
	p := &pair{
		inst:         inst,
		builtin:      fmt.Sprintf("127.0.0.1:%d", ports[0]),
		ours:         fmt.Sprintf("127.0.0.1:%d", ports[1]),
		origins:      origins(ds.zones),
		fallsThrough: slices.Contains(ds.options, "fallthrough"),
		path:         path,
		cli:          e.cli,
		deviations:   map[string]int{},
	}
	t.Cleanup(p.stop)
	if rev > 0 {
		waitIndexed(t, path, rev)
	}
	return p
}

// stop shuts the instance down, running its shutdown callbacks; calling it again is harmless.
func (p *pair) stop() {
	if p.inst == nil {
		return
	}
	testserver.Stop(p.inst)
	p.inst = nil
}

// waitIndexed waits until every etcdsd index under path (one per zone) has reached rev,
// as its revision metric says.
func waitIndexed(t *testing.T, path string, rev int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mfs, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		seen, behind := 0, 0
		for _, mf := range mfs {
			if mf.GetName() != "coredns_etcdsd_revision" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "prefix" && (l.GetValue() == path || strings.HasPrefix(l.GetValue(), path+"/")) {
						seen++
						if m.GetGauge().GetValue() < float64(rev) {
							behind++
						}
					}
				}
			}
		}
		if seen > 0 && behind == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("etcdsd did not index %s up to revision %d", path, rev)
}

// compare asks both servers q and returns a description of any difference, or "", and
// the etcd plugin's answer.
func (p *pair) compare(q query, leased bool) (diff string, builtin *dns.Msg, err error) {
	m := new(dns.Msg).SetQuestion(q.name, q.qtype)
	if q.edns {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Timeout: 5 * time.Second}
	a, _, err := c.Exchange(m, p.builtin)
	b, _, oursErr := c.Exchange(m.Copy(), p.ours)
	if oursErr != nil {
		return "", nil, fmt.Errorf("etcdsd: %w", oursErr)
	}
	if err != nil {
		if kind := p.unanswered(q, b); kind != "" {
			p.deviations[kind]++
			return "", b, nil // the etcd plugin's answer, had it packed, is not known
		}
		return "", nil, fmt.Errorf("etcd: %w", err)
	}
	if a.Truncated || b.Truncated {
		// A truncated answer holds what fits, and a client asks again over TCP: what
		// fits differs where etcdsd's records are longer (a target targetstrip no
		// longer shortens). The answers over TCP are compared, their flags too.
		c.Net = "tcp"
		if a, _, err = c.Exchange(m, p.builtin); err != nil {
			return "", nil, fmt.Errorf("etcd over TCP: %w", err)
		}
		if b, _, err = c.Exchange(m.Copy(), p.ours); err != nil {
			return "", nil, fmt.Errorf("etcdsd over TCP: %w", err)
		}
	}
	var diffs []string
	if a.Rcode != b.Rcode {
		diffs = append(diffs, fmt.Sprintf("rcode %s / %s", dns.RcodeToString[a.Rcode], dns.RcodeToString[b.Rcode]))
	}
	if a.Authoritative != b.Authoritative || a.Truncated != b.Truncated {
		diffs = append(diffs, fmt.Sprintf("flags aa=%v tc=%v / aa=%v tc=%v", a.Authoritative, a.Truncated, b.Authoritative, b.Truncated))
	}
	tolerance := uint32(0)
	if leased {
		tolerance = 1 // leases count down: a TTL within a second
	}
	for _, s := range []struct {
		name string
		a, b []dns.RR
	}{{"answer", a.Answer, b.Answer}, {"authority", a.Ns, b.Ns}, {"additional", a.Extra, b.Extra}} {
		if d := sectionDiff(s.a, s.b, tolerance); d != "" {
			diffs = append(diffs, s.name+": "+d)
		}
	}
	if len(diffs) == 0 {
		return "", a, nil
	}
	if kind := p.deviation(q, a, b, tolerance); kind != "" {
		p.deviations[kind]++
		return "", a, nil
	}
	return fmt.Sprintf("%s\n--- etcd:\n%s\n--- etcdsd:\n%s", strings.Join(diffs, "; "), a, b), a, nil
}

// sectionDiff compares two sections as multisets, ignoring the SOA serial (the etcd
// plugin uses the clock, etcdsd the revision) and TTL differences up to tolerance.
func sectionDiff(a, b []dns.RR, tolerance uint32) string {
	na, nb := normalize(a), normalize(b)
	if len(na) != len(nb) {
		return fmt.Sprintf("%d records / %d records", len(na), len(nb))
	}
	for i := range na {
		if na[i].text != nb[i].text {
			return fmt.Sprintf("%q / %q", na[i].text, nb[i].text)
		}
		if d := math.Abs(float64(na[i].ttl) - float64(nb[i].ttl)); d > float64(tolerance) {
			return fmt.Sprintf("%q TTL %d / %d", na[i].text, na[i].ttl, nb[i].ttl)
		}
	}
	return ""
}

type normalized struct {
	text string
	ttl  uint32
}

func normalize(rrs []dns.RR) []normalized {
	out := make([]normalized, 0, len(rrs))
	for _, rr := range rrs {
		c := dns.Copy(rr)
		ttl := c.Header().Ttl
		c.Header().Ttl = 0
		switch x := c.(type) {
		case *dns.SOA:
			x.Serial = 0
		case *dns.TXT:
			// The intended difference of TestDeviationTXT255: the etcd plugin appends an
			// empty string to a text whose length is a multiple of 255.
			if n := len(x.Txt); n > 1 && x.Txt[n-1] == "" && len(x.Txt[n-2]) == 255 {
				x.Txt = x.Txt[:n-1]
			}
		}
		out = append(out, normalized{text: c.String(), ttl: ttl})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].text != out[j].text {
			return out[i].text < out[j].text
		}
		return out[i].ttl < out[j].ttl
	})
	return out
}

// check runs queries against a pair and reports mismatches, at most a few per data set. It
// returns the number of mismatches and of queries that had answers. Equal answers prove
// something only where there are answers and no failures: a data set with no answer at
// all, or a SERVFAIL where the data set expects none, is an error too.
func check(t *testing.T, p *pair, ds dataset, queries []query, replay string) (mismatches, answered int) {
	t.Helper()
	leased := slices.ContainsFunc(ds.records, func(r record) bool { return r.leaseTTL > 0 })
	servfails := 0
	for _, q := range queries {
		d, builtin, err := p.compare(q, leased)
		if err != nil {
			t.Errorf("%s %s: %v", q.name, dns.TypeToString[q.qtype], err)
			mismatches++
			continue
		}
		if len(builtin.Answer) > 0 {
			answered++
		}
		if builtin.Rcode == dns.RcodeServerFailure && !ds.servfail && ds.holds(q.name) {
			if servfails++; servfails <= 3 {
				t.Errorf("SERVFAIL from the etcd plugin for %s %s %s\ndata set %s:\n%s", q.name, dns.TypeToString[q.qtype], replay, ds.name, dump(ds))
			}
		}
		if d != "" {
			mismatches++
			if mismatches <= 3 {
				t.Errorf("mismatch for %s %s (edns %v) %s\ndata set %s:\n%s\n%s",
					q.name, dns.TypeToString[q.qtype], q.edns, replay, ds.name, dump(ds), d)
			}
		}
	}
	if answered == 0 && len(queries) > 0 {
		t.Errorf("%s: none of %d queries had an answer %s", ds.name, len(queries), replay)
	}
	if *verbose {
		t.Logf("%s: %d queries, %d with answers, %d mismatches", ds.name, len(queries), answered, mismatches)
	}
	return mismatches, answered
}

// holds reports whether name is in one of the data set's zones, where the plugins answer;
// other names get what the next plugins in the block say.
func (ds dataset) holds(name string) bool {
	for _, z := range strings.Fields(ds.zones) {
		for _, origin := range plugin.Host(z).NormalizeExact() {
			if dns.IsSubDomain(origin, strings.ToLower(name)) {
				return true
			}
		}
	}
	return false
}

func dump(ds dataset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  zones %s, options %q\n", ds.zones, ds.options)
	for _, r := range ds.records {
		fmt.Fprintf(&b, "  %s %s", r.key, r.value)
		if r.leaseTTL > 0 {
			fmt.Fprintf(&b, " (lease %ds)", r.leaseTTL)
		}
		b.WriteString("\n")
	}
	return b.String()
}
