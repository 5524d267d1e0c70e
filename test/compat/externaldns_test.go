package compat

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
)

// externalDNSFixture reads testdata/external-dns.records, what external-dns's CoreDNS
// provider and TXT registry write, as a data set of zone example.org. Values with a host
// name and a text are left out: they are TestDeviationAliasWithText's.
func externalDNSFixture(t *testing.T) (ds dataset, left int) {
	f, err := os.Open("../../testdata/external-dns.records")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ds = dataset{name: "external-dns", zones: "example.org"}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		var v struct{ Host, Text string }
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if v.Host != "" && v.Text != "" && net.ParseIP(v.Host) == nil {
			left++
			continue
		}
		ds.records = append(ds.records, rec(strings.TrimPrefix(key, "/skydns/"), value))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
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
	t.Logf("external-dns fixture: %d records (%d left to TestDeviationAliasWithText), %d queries, %d with answers",
		len(ds.records), left, len(qs), answered)
}
