package compat

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/etcdsd/etcdsd/internal/devetcd"
)

// externalDNSFixture reads testdata/external-dns.records, what external-dns's CoreDNS
// provider and TXT registry write, as a data set of zone example.org. Values with a host
// name and a text are left out: they are TestDeviationAliasWithText's.
func externalDNSFixture(t *testing.T) (ds dataset, left int) {
	rs, err := devetcd.ReadRecords("../../testdata/external-dns.records")
	if err != nil {
		t.Fatal(err)
	}
	ds = dataset{name: "external-dns", zones: "example.org"}
	for _, r := range rs {
		var v struct{ Host, Text string }
		if err := json.Unmarshal([]byte(r.Value), &v); err != nil {
			t.Fatalf("%s: %v", r.Key, err)
		}
		if v.Host != "" && v.Text != "" && net.ParseIP(v.Host) == nil {
			left++
			continue
		}
		ds.records = append(ds.records, rec(strings.TrimPrefix(r.Key, "/skydns/"), r.Value))
	}
	return ds, left
}

// external-dns's records get the etcd plugin's answers, queried every way derive knows.
func TestExternalDNSFixture(t *testing.T) {
	ds, left := externalDNSFixture(t)
	if len(ds.records) < 10 || left == 0 {
		t.Fatalf("fixture: %d records, %d aliases with text; want the whole fixture", len(ds.records), left)
	}
	p := startPair(t, ds, "/external-dns")
	qs := derive(ds)
	_, answered := check(t, p, ds, qs, "")
	q, a := writeAndCheck(t, p, ds, "/external-dns", "example.org", 1, "(external-dns fixture)")
	t.Logf("external-dns fixture: %d records (%d left to TestDeviationAliasWithText), %d queries, %d with answers",
		len(ds.records), left, len(qs)+q, answered+a)
}
