package etcdsd

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/coredns/coredns/plugin/dnssec"

	"github.com/miekg/dns"
)

// The dnssec plugin in front of etcdsd signs its answers and denials, prepared answers
// included: every RRset of every section verifies against the zone's key, and a denial
// carries an NSEC for the name whose bitmap leaves the type out (RFC 4034 section 4).
func TestDNSSECSignsAnswersAndDenials(t *testing.T) {
	putAll(t, [][2]string{
		{"/sec/org/example/web", `{"host":"192.0.2.1"}`},
		{"/sec/org/example/web/b", `{"host":"192.0.2.2"}`},
		{"/sec/org/example/v6", `{"host":"2001:db8::1"}`},
		{"/sec/org/example/_tcp/_http/a", `{"host":"v6.example.org","port":80}`},
		{"/sec/org/example/_tcp/_http/b", `{"host":"192.0.2.3","port":8080}`},
		{"/sec/org/example/alias", `{"host":"web.example.org"}`},
		{"/sec/org/example/txt/x", `{"text":"hello"}`},
	})
	key, dir := writeZoneKey(t, "example.org.")
	addr := startServer(t, fmt.Sprintf(" dnssec example.org {\n  key file %s\n }\n etcdsd example.org {\n  path /sec\n  endpoint %s\n }",
		filepath.Join(dir, keyBase(key)), testEtcd.Server().Endpoint))

	for _, tc := range []struct {
		name    string
		qtype   uint16
		answers int    // RRsets in the answer section, RRSIGs aside
		denied  uint16 // for a denial: the type the NSEC must leave out
	}{
		{"web.example.org.", dns.TypeA, 1, 0},
		{"_http._tcp.example.org.", dns.TypeSRV, 1, 0},
		{"alias.example.org.", dns.TypeA, 2, 0},
		{"txt.example.org.", dns.TypeTXT, 1, 0},
		{"alias.example.org.", dns.TypeTXT, 1, 0}, // a CNAME whose target has no text
		{"web.example.org.", dns.TypeAAAA, 0, dns.TypeAAAA},
		{"nothere.example.org.", dns.TypeA, 0, dns.TypeA},
		{"example.org.", dns.TypeSOA, 1, 0},
		{"web.example.org.", dns.TypeSOA, 0, dns.TypeSOA}, // only the apex holds the SOA
	} {
		for round := range 2 { // the second answer is a prepared one
			m := new(dns.Msg).SetQuestion(tc.name, tc.qtype)
			m.SetEdns0(4096, true)
			r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, addr)
			if err != nil {
				t.Fatal(err)
			}
			where := fmt.Sprintf("%s %s (round %d)", tc.name, dns.TypeToString[tc.qtype], round)
			if r.Rcode != dns.RcodeSuccess {
				t.Errorf("%s: rcode %s", where, dns.RcodeToString[r.Rcode])
			}
			if n := len(rrsets(r.Answer)); n != tc.answers {
				t.Errorf("%s: %d RRsets in the answer, want %d:\n%s", where, n, tc.answers, r)
			}
			for _, section := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
				verifyRRsets(t, where, key, section)
			}
			if tc.denied != 0 {
				verifyDenial(t, where, r, tc.denied)
			}
		}
	}
}

// writeZoneKey writes a new ECDSA P-256 key for zone in the BIND file format the dnssec
// plugin reads, and returns it and the directory.
func writeZoneKey(t *testing.T, zone string) (*dns.DNSKEY, string) {
	t.Helper()
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := filepath.Join(dir, keyBase(key))
	if err := os.WriteFile(base+".key", []byte(key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".private", []byte(key.PrivateKeyString(priv)), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, dir
}

func keyBase(k *dns.DNSKEY) string {
	return fmt.Sprintf("K%s+%03d+%05d", k.Header().Name, k.Algorithm, k.KeyTag())
}

// rrsets groups rrs by owner and type, RRSIGs aside.
func rrsets(rrs []dns.RR) map[string][]dns.RR {
	sets := map[string][]dns.RR{}
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; t != dns.TypeRRSIG && t != dns.TypeOPT {
			k := strings.ToLower(rr.Header().Name) + " " + dns.TypeToString[t]
			sets[k] = append(sets[k], rr)
		}
	}
	return sets
}

// verifyRRsets checks that every RRset of section has a valid RRSIG by key.
func verifyRRsets(t *testing.T, where string, key *dns.DNSKEY, section []dns.RR) {
	t.Helper()
	for name, set := range rrsets(section) {
		ok := slices.ContainsFunc(section, func(rr dns.RR) bool {
			sig, isSig := rr.(*dns.RRSIG)
			return isSig && sig.TypeCovered == set[0].Header().Rrtype && strings.EqualFold(sig.Header().Name, set[0].Header().Name) &&
				sig.KeyTag == key.KeyTag() && sig.ValidityPeriod(time.Now()) && sig.Verify(key, set) == nil
		})
		if !ok {
			t.Errorf("%s: no valid signature over %s", where, name)
		}
	}
}

// verifyDenial checks the NSEC of a NODATA or (black lies) NXDOMAIN answer.
func verifyDenial(t *testing.T, where string, r *dns.Msg, qtype uint16) {
	t.Helper()
	for _, rr := range r.Ns {
		if nsec, ok := rr.(*dns.NSEC); ok && strings.EqualFold(nsec.Header().Name, r.Question[0].Name) {
			if slices.Contains(nsec.TypeBitMap, qtype) {
				t.Errorf("%s: the NSEC says the name has the type asked", where)
			}
			return
		}
	}
	t.Errorf("%s: no NSEC for the name:\n%s", where, r)
}
