package compat

import (
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Every type either plugin serves, and some neither serves.
var (
	allTypes     = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeMX, dns.TypeCNAME, dns.TypePTR, dns.TypeNS, dns.TypeSOA, dns.TypeANY, dns.TypeHINFO, dns.TypeCAA}
	variantTypes = []uint16{dns.TypeA, dns.TypeSRV, dns.TypeTXT, dns.TypeCNAME}
)

// keyName turns a record key below the path into its DNS name: labels reversed.
func keyName(key string) string {
	labels := strings.Split(strings.Trim(key, "/"), "/")
	slices.Reverse(labels)
	return dns.Fqdn(strings.Join(labels, "."))
}

// askable reports whether name is a DNS name, which a query can ask: the name of a key
// that is no DNS name (skydns.CheckKey) is not.
func askable(name string) bool {
	_, ok := dns.IsDomainName(name)
	return ok && !strings.Contains(name, "..") && !strings.HasPrefix(name, ".")
}

// derive lists the queries a data set invites: every key's name and its ancestors with
// every type; and, with fewer types, names next to them: a missing child, a sibling that
// extends or shortens the first label, "*" and "any" in place of a label, and mixed case.
func derive(ds dataset) []query {
	base := map[string]bool{}
	for _, r := range ds.records {
		name := keyName(r.key)
		for {
			base[name] = true
			off, end := dns.NextLabel(name, 0)
			if end {
				break
			}
			name = name[off:]
		}
	}
	for _, z := range strings.Fields(ds.zones) {
		if !strings.Contains(z, "/") { // a CIDR zone's names come from its records
			base[dns.Fqdn(z)] = true
			base["nothere."+dns.Fqdn(z)] = true
		}
	}
	for n := range base {
		if !askable(n) {
			delete(base, n)
		}
	}
	names := sortedKeys(base)

	variants := map[string]bool{}
	for _, name := range names {
		labels := dns.SplitDomainName(name)
		if len(labels) < 2 {
			continue
		}
		first, rest := labels[0], strings.Join(labels[1:], ".")+"."
		variants["nothere."+name] = true
		variants[first+"x."+rest] = true
		if len(first) > 1 {
			variants[first[:len(first)-1]+"."+rest] = true
		}
		variants["*."+rest] = true
		variants["any."+rest] = true
		if len(labels) > 2 {
			variants[first+".*."+strings.Join(labels[2:], ".")+"."] = true
		}
		variants[strings.ToUpper(first)+"."+rest] = true
	}
	for _, n := range names {
		delete(variants, n)
	}

	var qs []query
	for _, n := range names {
		for _, t := range allTypes {
			qs = append(qs, query{name: n, qtype: t, edns: true})
		}
		// Without EDNS, answers over 512 bytes are truncated: both must agree on that too.
		qs = append(qs, query{name: n, qtype: dns.TypeSRV}, query{name: n, qtype: dns.TypeA})
	}
	for _, n := range sortedKeys(variants) {
		for _, t := range variantTypes {
			qs = append(qs, query{name: n, qtype: t, edns: true})
		}
	}
	return append(qs, ds.queries...)
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
