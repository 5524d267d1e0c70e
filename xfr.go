package etcdsd

import (
	"slices"
	"strings"

	"github.com/coredns/coredns/plugin/transfer"
	"github.com/etcdsd/etcdsd/internal/index"

	"github.com/miekg/dns"
)

// maxIXFRSteps bounds the changes one IXFR answers change by change: each step reads the
// names above the changed keys twice, the apex included, which answers with up to
// max_answers keys; past it, the whole zone costs less.
const maxIXFRSteps = 16

// Transfer implements transfer.Transferer: the zone as one snapshot holds it, at one
// serial (the snapshot's revision), between its SOA records (RFC 5936). A SkyDNS name
// answers with its subtree, which a zone file cannot say; the zone carries, for every name
// with keys at or below it, the records etcdsd answers for it, type by type (zoneRecords).
// A secondary that loads it answers those names and types as etcdsd does. An IXFR whose
// serial is the current one or newer gets the SOA alone (RFC 1995 section 2); one whose
// serial the journal holds, no more than maxIXFRSteps changes back, gets the changes
// since, change by change (section 4); any other gets the whole zone, which RFC 1995
// allows. The CoreDNS transfer plugin asks one handler per plugin name: a zone of another
// etcdsd stanza of the instance is answered by that stanza. Errors:
// transfer.ErrNotAuthoritative for a zone no stanza serves, errNotSynced before the
// first complete list.
func (e *Etcdsd) Transfer(zone string, serial uint32) (<-chan []dns.RR, error) {
	zone = strings.ToLower(dns.Fqdn(zone))
	if !slices.Contains(e.zones, zone) {
		if other := e.stanzaOf(zone); other != nil {
			return other.Transfer(zone, serial)
		}
		return nil, transfer.ErrNotAuthoritative
	}
	w := e.byZone[zone]
	var steps []journalEntry
	if serial != 0 {
		steps = w.journal.since(serial)
	}
	snap := w.snapshot()
	if len(steps) > 0 {
		snap = steps[len(steps)-1].snap // the transfer and its deltas end at one serial
	}
	if snap == nil {
		return nil, errNotSynced
	}
	x := index.NewTransfer(&e.Options, e.zones, zone)
	soa := x.SOA(snap)
	current := soa[0].(*dns.SOA).Serial
	ch := make(chan []dns.RR)
	go func() {
		defer close(ch)
		ch <- soa
		switch {
		case serial != 0 && int32(serial-current) >= 0: // #nosec G115 -- RFC 1982 serial arithmetic
			return
		case len(steps) > 1 && len(steps) <= maxIXFRSteps+1:
			for i := 1; i < len(steps); i++ {
				x.Delta(ch, steps[i-1].snap, steps[i].snap, steps[i].keys)
			}
		default:
			x.Zone(snap, func(rrs []dns.RR) { ch <- rrs })
		}
		ch <- soa
	}()
	return ch, nil
}

// stanzaOf returns the etcdsd stanza of e's instance that serves zone, or nil.
func (e *Etcdsd) stanzaOf(zone string) *Etcdsd {
	if e.group == nil {
		return nil
	}
	e.group.mu.Lock()
	defer e.group.mu.Unlock()
	for _, m := range e.group.members {
		if slices.Contains(m.zones, zone) {
			return m
		}
	}
	return nil
}
