package compat

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

var wildcardSeeds = 40

// RFC 4592 wildcards (the wildcards option), against the file plugin serving the same
// records as a zone file: generated key trees with "*" keys, a zone file derived from
// them, and every name of the zone, names below them and names the wildcards match,
// asked of both.
func TestWildcardsAgainstFile(t *testing.T) {
	asked, synthesized := 0, 0
	defer func() { t.Logf("%d seeds: %d queries, %d answered from a wildcard", wildcardSeeds, asked, synthesized) }()
	for seed := range uint64(wildcardSeeds) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { wildcardsAgainstFile(t, seed, &asked, &synthesized) })
	}
}

// wildcardsAgainstFile asks the queries of one seed, counting them in *asked and those a
// wildcard answered in *synthesized.
func wildcardsAgainstFile(t *testing.T, seed uint64, asked, synthesized *int) {
	w := generateWildcards(seed)
	ports, stop := startFileOracle(t, fmt.Sprintf("/wild-%d", seed), "example.local.", w.records, w.zonefile(), []string{"wildcards", "no_apex_fallback"})
	defer stop()
	referee := startReferee(t, "example.local.", w.zonefile())
	failed := 0
	for _, q := range w.queries(rand.New(rand.NewPCG(seed, 3))) {
		ours, file := askBoth(t, q, ports)
		*asked++
		if _, ok := w.owners[q.name]; !ok && len(file.Answer) > 0 {
			*synthesized++
		}
		if w.ent(q.name) && len(file.Answer) > 0 {
			// The file plugin of CoreDNS v1.15 synthesizes from a wildcard for a name
			// that exists as an empty non-terminal, which RFC 4592 section 2.2.2 rules
			// out (its closerENTExists skips the name itself; coredns#8223 fixed the
			// names above it): there the answer is NODATA.
			if ours.Rcode != dns.RcodeSuccess || len(ours.Answer) > 0 || len(ours.Ns) != 1 || ours.Ns[0].Header().Rrtype != dns.TypeSOA {
				t.Errorf("seed %d: %s %s, an empty non-terminal: want NODATA, got\n%s", seed, q.name, dns.TypeToString[q.qtype], ours)
			}
			continue
		}
		if d := judge(t, q, ours, file, referee); d != "" && failed < 3 {
			failed++
			t.Errorf("seed %d: %s %s: %s\nkeys:\n%s\nzone file:\n%s", seed, q.name, dns.TypeToString[q.qtype], d, dump(dataset{records: w.records}), w.zonefile())
		}
	}
}

// wildcardSet is a generated key tree and what each name of its zone file holds.
type wildcardSet struct {
	records []record
	owners  map[string][]string // owner name -> records, "TYPE RDATA"
	stars   []string            // the wildcards' parents
}

func generateWildcards(seed uint64) *wildcardSet {
	rng := rand.New(rand.NewPCG(seed, 0x2a))
	labels := []string{"a", "b", "c", "www", "api", "x1"}
	w := &wildcardSet{owners: map[string][]string{}}
	name := func(depth int) []string {
		var l []string
		for range depth {
			l = append(l, pick(rng, labels))
		}
		return l
	}
	data := func() (string, string) {
		switch rng.IntN(3) {
		case 0:
			ip := fmt.Sprintf("192.0.2.%d", rng.IntN(6))
			return fmt.Sprintf(`{"host":%q}`, ip), "A " + ip
		case 1:
			ip := fmt.Sprintf("2001:db8::%d", rng.IntN(6))
			return fmt.Sprintf(`{"host":%q}`, ip), "AAAA " + ip
		}
		txt := pick(rng, []string{"one", "two", "three"})
		return fmt.Sprintf(`{"text":%q}`, txt), fmt.Sprintf("TXT %q", txt)
	}
	// put adds a key below example.local and its record to the owner names given; a key
	// drawn again is left as it was.
	used := map[string]bool{}
	put := func(key []string, value, rr string, owners ...string) {
		k := "local/example/" + strings.Join(key, "/")
		if used[k] {
			return
		}
		used[k] = true
		w.records = append(w.records, record{key: k, value: value})
		for _, o := range owners {
			if !slices.Contains(w.owners[o], rr) {
				w.owners[o] = append(w.owners[o], rr)
			}
		}
	}
	owner := func(key []string) string {
		rev := slices.Clone(key)
		slices.Reverse(rev)
		return dns.Fqdn(strings.Join(append(rev, "example.local"), "."))
	}
	// Plain keys: the record belongs to the key's name and every name above it but the
	// apex (a SkyDNS name answers with its subtree; no_apex_fallback leaves the apex out).
	var plain []string
	for range 3 + rng.IntN(8) {
		key := name(1 + rng.IntN(3))
		v, rr := data()
		var owners []string
		for i := len(key); i > 0; i-- {
			owners = append(owners, owner(key[:i]))
		}
		put(key, v, rr, owners...)
		plain = append(plain, owner(key))
	}
	// Wildcards: one key "*", which may be a CNAME to a plain name, or records below "*",
	// which belong to the wildcard and to their own names.
	for range 1 + rng.IntN(3) {
		parent := name(rng.IntN(3))
		star := append(slices.Clone(parent), "*")
		if slices.Contains(w.stars, owner(star)) {
			continue
		}
		w.stars = append(w.stars, owner(star))
		if rng.IntN(2) == 0 {
			if rng.IntN(2) == 0 {
				target := pick(rng, plain)
				put(star, fmt.Sprintf(`{"host":%q}`, strings.TrimSuffix(target, ".")), "CNAME "+target, owner(star))
				continue
			}
			v, rr := data()
			put(star, v, rr, owner(star))
			continue
		}
		for range 1 + rng.IntN(2) {
			key := append(slices.Clone(star), pick(rng, []string{"r1", "r2"}))
			v, rr := data()
			put(key, v, rr, owner(star), owner(key))
		}
	}
	// A wildcard that is a CNAME is its name's only record; drop records that would
	// stand beside it, which SkyDNS would also have made (a "*" key and keys below it).
	for o, rrs := range w.owners {
		if slices.ContainsFunc(rrs, func(s string) bool { return strings.HasPrefix(s, "CNAME") }) && len(rrs) > 1 {
			delete(w.owners, o)
			w.records = slices.DeleteFunc(w.records, func(r record) bool {
				return owner(strings.Split(strings.TrimPrefix(r.key, "local/example/"), "/")) == o
			})
		}
	}
	return w
}

// ent reports whether name is an empty non-terminal of the zone file: no records, and
// names below it.
func (w *wildcardSet) ent(name string) bool {
	if _, ok := w.owners[name]; ok {
		return false
	}
	for o := range w.owners {
		if strings.HasSuffix(o, "."+name) {
			return true
		}
	}
	return false
}

func (w *wildcardSet) zonefile() string {
	var b strings.Builder
	b.WriteString("$ORIGIN example.local.\n@ 30 IN SOA ns.dns.example.local. hostmaster.example.local. 1 7200 1800 86400 30\n")
	for _, o := range sortedKeys(mapKeys(w.owners)) {
		for _, rr := range w.owners[o] {
			fmt.Fprintf(&b, "%s 300 IN %s\n", o, rr)
		}
	}
	return b.String()
}

func mapKeys(m map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// queries asks every owner name, names between them and the apex, names below them, and
// names each wildcard matches, with the types the data has and MX, which it has not. TXT
// at the apex is left out: SkyDNS's TXT lookup reads the whole zone there.
func (w *wildcardSet) queries(rng *rand.Rand) []query {
	names := map[string]bool{"example.local.": true, "nothere.example.local.": true}
	for o := range w.owners {
		for n := o; n != "example.local."; n = n[strings.IndexByte(n, '.')+1:] {
			names[n] = true
			names["zz."+n] = true
		}
	}
	for _, s := range w.stars {
		parent := strings.TrimPrefix(s, "*.")
		names["q."+parent] = true
		names["q1.q2."+parent] = true
		names[pick(rng, []string{"a.", "www.", "x.y."})+parent] = true
	}
	var out []query
	for _, n := range sortedKeys(names) {
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX} {
			if n == "example.local." && t == dns.TypeTXT {
				continue
			}
			out = append(out, query{name: n, qtype: t})
		}
	}
	return out
}
