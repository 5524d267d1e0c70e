package compat

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"unicode"
)

var (
	seeds   = flag.String("compat.seeds", "1-20", "seeds of the generated data sets, FROM-TO")
	queries = flag.Int("compat.queries", 200, "queries per generated data set")
	writes  = flag.Int("compat.writes", 5, "writes to each generated data set, each followed by queries")
)

// Label pools: few enough that names, keys and queries overlap often.
var (
	upperLabels = []string{"_tcp", "_udp", "svc", "www", "api", "dns", "mail", "a", "b"}
	innerLabels = []string{"_web", "_db", "_http", "apex", "ns", "web", "db", "x", "x1", "v2", "node-1"}
	leafLabels  = []string{"i1", "i2", "i3", "web-server01", "app", "1a2b3c4d", "n", "nn"}
)

// generate builds a data set from seed: a random tree of keys under example.local and a
// few reverse keys, with random SkyDNS values and some leases.
func generate(seed uint64) dataset {
	rng := rand.New(rand.NewPCG(seed, 0x65746364))
	ds := dataset{name: fmt.Sprintf("generated seed %d", seed), zones: "example.local 10.0.0.0/8"}
	switch rng.IntN(6) {
	case 0:
		ds.options = append(ds.options, "no_apex_fallback")
	case 1:
		ds.options = append(ds.options, "fallthrough")
		ds.servfail = true // from erratic, the next plugin, for types but A and AAAA
	case 2:
		ds.options = append(ds.options, "min-lease-ttl 5m", "max-lease-ttl 1h")
	}

	var names []string
	n := 5 + rng.IntN(40)
	for range n {
		labels := []string{"local", "example"}
		if rng.IntN(3) > 0 {
			labels = append(labels, pick(rng, upperLabels))
		}
		for range rng.IntN(3) {
			labels = append(labels, pick(rng, innerLabels))
		}
		labels = append(labels, pick(rng, leafLabels))
		key := strings.Join(labels, "/")
		if rng.IntN(10) == 0 {
			key = fmt.Sprintf("arpa/in-addr/10/0/%d/%d", rng.IntN(3), rng.IntN(4))
		}
		names = append(names, keyName(key))
		r := record{key: key, value: value(rng, names)}
		// A name server below dns/ns must be an address: a name fails every NS query in
		// both plugins, which the hand-written "name server that is a name" covers.
		for strings.HasPrefix(key, "local/example/dns/ns/") && !addressValue(r.value) {
			r.value = value(rng, names)
		}
		if rng.IntN(8) == 0 {
			r.leaseTTL = []int64{60, 600, 3600, 100000}[rng.IntN(4)]
		}
		ds.records = append(ds.records, r)
	}
	return ds
}

// value returns a random SkyDNS JSON value; names are the in-zone names so far, for hosts
// that are CNAME, SRV or MX targets.
func value(rng *rand.Rand, names []string) string {
	v := map[string]any{}
	switch r := rng.IntN(20); {
	case r < 8:
		v["host"] = fmt.Sprintf("10.%d.%d.%d", rng.IntN(3), rng.IntN(3), rng.IntN(5))
	case r < 11:
		v["host"] = fmt.Sprintf("2001:db8::%x", rng.IntN(8))
	case r < 16:
		v["host"] = strings.TrimSuffix(pick(rng, names), ".")
	case r < 17:
		v["host"] = "ext.example.org"
	case r < 18:
		v["host"] = "nothere.example.org"
	}
	if rng.IntN(2) == 0 {
		v["port"] = []int{0, 53, 80, 443, 8080, 65535}[rng.IntN(6)]
	}
	if rng.IntN(3) == 0 {
		v["priority"] = rng.IntN(40)
	}
	if rng.IntN(3) == 0 {
		v["weight"] = rng.IntN(200)
	}
	if rng.IntN(3) == 0 {
		v["ttl"] = []int{5, 60, 300, 3600}[rng.IntN(4)]
	}
	// A host name with a text is TestDeviationAliasWithText's, not the generator's.
	if host, _ := v["host"].(string); rng.IntN(5) == 0 && (host == "" || net.ParseIP(host) != nil) {
		v["text"] = strings.Repeat(pick(rng, []string{"v=spf1", "owner=x ", "t"}), 1+rng.IntN(90))
	}
	if rng.IntN(8) == 0 {
		v["mail"] = true
	}
	if rng.IntN(8) == 0 {
		v["targetstrip"] = rng.IntN(4)
	}
	if rng.IntN(6) == 0 {
		v["group"] = pick(rng, []string{"g1", "g2"})
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// addressValue reports whether a SkyDNS value's host is an IP address.
func addressValue(v string) bool {
	var s struct{ Host string }
	return json.Unmarshal([]byte(v), &s) == nil && net.ParseIP(s.Host) != nil
}

func pick(rng *rand.Rand, from []string) string { return from[rng.IntN(len(from))] }

// sample draws n of the data set's queries, some in mixed case.
func sample(rng *rand.Rand, ds dataset, n int) []query {
	all := derive(ds)
	qs := make([]query, n)
	for i := range qs {
		q := all[rng.IntN(len(all))]
		if rng.IntN(5) == 0 {
			q.name = mixCase(rng, q.name)
		}
		qs[i] = q
	}
	return qs
}

func mixCase(rng *rand.Rand, s string) string {
	b := []rune(s)
	for i := range b {
		if rng.IntN(2) == 0 {
			b[i] = unicode.ToUpper(b[i])
		}
	}
	return string(b)
}

// writeAndCheck applies -compat.writes writes of every shape to zone while p serves ds from
// the package's etcd under path, and compares answers after each. It returns the number of
// queries and of those with answers.
func writeAndCheck(t *testing.T, p *pair, ds dataset, path, zone string, seed uint64, replay string) (queries, answered int) {
	t.Helper()
	r := newRun(t, target{[]string{testEtcd.Server().Endpoint}, testEtcd.Client()}, p, path, zone, seed, ds.records)
	r.replay, r.servfail = replay, ds.servfail
	for range *writes {
		r.compare(r.write())
	}
	return r.queries, r.answered
}

func TestGenerated(t *testing.T) {
	var from, to uint64
	if _, err := fmt.Sscanf(*seeds, "%d-%d", &from, &to); err != nil || from > to {
		t.Fatalf("-compat.seeds wants FROM-TO, got %q", *seeds)
	}
	total, mismatches, answered := 0, 0, 0
	deviations := map[string]int{}
	for seed := from; seed <= to; seed++ {
		ds := generate(seed)
		p := startPair(t, ds, fmt.Sprintf("/gen-%d", seed))
		rng := rand.New(rand.NewPCG(seed, 0x71))
		qs := sample(rng, ds, *queries)
		replay := fmt.Sprintf("(replay: go test ./test/compat -run TestGenerated -compat.seeds=%d-%d -compat.queries=%d)", seed, seed, *queries)
		m, a := check(t, p, ds, qs, replay)
		mismatches, answered = mismatches+m, answered+a
		total += len(qs)
		// Then writes of every shape while both plugins watch.
		path := fmt.Sprintf("/gen-%d", seed)
		q, a := writeAndCheck(t, p, ds, path, "example.local", seed, replay)
		total, answered = total+q, answered+a
		for k, n := range p.deviations {
			deviations[k] += n
		}
		p.stop()
	}
	t.Logf("seeds %d-%d: %d queries, %d with answers, %d mismatches; documented deviations: %v", from, to, total, answered, mismatches, deviations)
}
