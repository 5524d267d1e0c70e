// Package indextest holds what tests of the answer engine share: an in-memory etcd range
// reader (the role of the kubernetes plugin's APIConnServeTest, or of the file plugin's
// zone parsed from a string), and a table of records with the answers they give. Nothing
// but tests imports it.
package indextest

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Prefix and Zones are the path prefix and the zones of a stanza that serves Records.
const Prefix = "h"

var Zones = []string{"example.local.", "0.0.10.in-addr.arpa."}

// Reader answers reads as an etcd holding its keys would, each written at the revision of
// its number, at the revision of the last: every key of the range asked for in one page.
// It holds no leases. It implements index.Reader.
type Reader []*mvccpb.KeyValue

// New returns a Reader holding kvs, keys and values, as etcd holds them after a put of
// each in turn: in key order, the last put of a key its value.
func New(kvs [][2]string) Reader {
	r := make(Reader, len(kvs))
	for i, kv := range kvs {
		r[i] = &mvccpb.KeyValue{Key: []byte(kv[0]), Value: []byte(kv[1]), CreateRevision: int64(i + 1), ModRevision: int64(i + 1), Version: 1}
	}
	slices.SortStableFunc(r, func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) })
	out := r[:0]
	for _, kv := range r {
		if n := len(out); n > 0 && bytes.Equal(out[n-1].Key, kv.Key) {
			out[n-1] = kv
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Get implements clientv3.KV's Get for a key or a range, with WithKeysOnly and
// WithCountOnly; other options are ignored.
func (r Reader) Get(_ context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	op := clientv3.OpGet(key, opts...)
	end := string(op.RangeBytes())
	resp := &clientv3.GetResponse{Header: &etcdserverpb.ResponseHeader{Revision: int64(len(r))}}
	for _, kv := range r {
		if k := string(kv.Key); k == key || end != "" && k > key && (k < end || end == "\x00") {
			resp.Count++
			if op.IsCountOnly() {
				continue
			}
			if op.IsKeysOnly() {
				kv = &mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
			}
			resp.Kvs = append(resp.Kvs, kv)
		}
	}
	return resp, nil
}

// TimeToLive fails: a Reader holds no leases.
func (Reader) TimeToLive(context.Context, clientv3.LeaseID, ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	return nil, errors.New("indextest: no leases")
}

// Records covers every record type and rule the answers follow, under the path prefix
// /h, for the zones example.local and 10.0.0.0/8 (Zones).
var Records = [][2]string{
	// The README's walk-through.
	{"/h/local/example/_tcp/_web/web-server01", `{"host":"1.1.1.1","port":80}`},
	{"/h/local/example/_tcp/_web/web-server02", `{"host":"1.1.1.2","port":80}`},
	{"/h/local/example/_tcp/_web/web-server03", `{"host":"1.1.1.3","port":80}`},
	// Addresses, a TTL, a TXT.
	{"/h/local/example/a/x1", `{"host":"10.0.0.1"}`},
	{"/h/local/example/v6/x1", `{"host":"2001:db8::1"}`},
	{"/h/local/example/ttl/x1", `{"host":"10.0.0.4","ttl":60}`},
	{"/h/local/example/txt/x1", `{"text":"hello world"}`},
	// An in-zone CNAME and its target.
	{"/h/local/example/alias", `{"host":"www.example.local"}`},
	{"/h/local/example/www", `{"host":"10.0.0.2"}`},
	// MX with an in-zone exchanger.
	{"/h/local/example/mail/mx1", `{"host":"mx1.example.local","priority":20,"mail":true}`},
	{"/h/local/example/mx1", `{"host":"10.0.0.3"}`},
	// SRV with a name target and explicit weights in one priority.
	{"/h/local/example/_tcp/_db/db1", `{"host":"db.example.local","port":5432}`},
	{"/h/local/example/db", `{"host":"10.0.0.5"}`},
	{"/h/local/example/_udp/_w/a", `{"host":"10.1.0.1","port":53,"weight":25}`},
	{"/h/local/example/_udp/_w/b", `{"host":"10.1.0.2","port":53,"weight":75}`},
	{"/h/local/example/_udp/_w/c", `{"host":"10.1.0.3","port":53,"priority":20}`},
	// targetstrip shortens the synthesized target.
	{"/h/local/example/_tcp/_ts/x1", `{"host":"10.3.0.1","port":80,"targetstrip":1}`},
	// Groups: the shortest key's group wins.
	{"/h/local/example/grp/a", `{"host":"10.2.0.1","group":"g1"}`},
	{"/h/local/example/grp/sub/b", `{"host":"10.2.0.2","group":"g1"}`},
	{"/h/local/example/grp/sub/c", `{"host":"10.2.0.3","group":"g2"}`},
	// Apex and name servers.
	{"/h/local/example/dns/apex/x1", `{"host":"10.9.9.9"}`},
	{"/h/local/example/dns/ns/ns1", `{"host":"10.9.0.1"}`},
	// Reverse zone.
	{"/h/arpa/in-addr/10/0/0/1", `{"host":"reverse.example.local"}`},
	// One bad value among good siblings.
	{"/h/local/example/bad/good", `{"host":"10.4.0.1"}`},
	{"/h/local/example/bad/broken", `{"host":`},
	// A name that has a record and children: both answer.
	{"/h/local/example/both", `{"host":"10.5.0.1"}`},
	{"/h/local/example/both/kid", `{"host":"10.5.0.2"}`},
	// A sibling whose name extends another one must not show up under it.
	{"/h/local/example/sib", `{"host":"10.6.0.1"}`},
	{"/h/local/example/sibling", `{"host":"10.6.0.2"}`},
}

// SOA is the apex SOA record of example.local in Cases; checks leave its serial out.
var SOA = test.SOA("example.local. 30 IN SOA ns.dns.example.local. hostmaster.example.local. 0 7200 1800 86400 30")

// Cases are questions about Records and their answers, as etcdsd and the built-in etcd
// plugin give them (TestServeDNS, TestBuild).
var Cases = []test.Case{
	{
		Qname: "_web._tcp.example.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV("_web._tcp.example.local. 300 IN SRV 10 33 80 web-server01._web._tcp.example.local."),
			test.SRV("_web._tcp.example.local. 300 IN SRV 10 33 80 web-server02._web._tcp.example.local."),
			test.SRV("_web._tcp.example.local. 300 IN SRV 10 33 80 web-server03._web._tcp.example.local."),
		},
		Extra: []dns.RR{
			test.A("web-server01._web._tcp.example.local. 300 IN A 1.1.1.1"),
			test.A("web-server02._web._tcp.example.local. 300 IN A 1.1.1.2"),
			test.A("web-server03._web._tcp.example.local. 300 IN A 1.1.1.3"),
		},
	},
	{
		Qname: "_web._tcp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("_web._tcp.example.local. 300 IN A 1.1.1.1"),
			test.A("_web._tcp.example.local. 300 IN A 1.1.1.2"),
			test.A("_web._tcp.example.local. 300 IN A 1.1.1.3"),
		},
	},
	{
		Qname: "web-server02._web._tcp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("web-server02._web._tcp.example.local. 300 IN A 1.1.1.2")},
	},
	{
		Qname: "A.Example.Local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("A.Example.Local. 300 IN A 10.0.0.1")},
	},
	{
		Qname: "v6.example.local.", Qtype: dns.TypeAAAA,
		Answer: []dns.RR{test.AAAA("v6.example.local. 300 IN AAAA 2001:db8::1")},
	},
	{
		Qname: "ttl.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("ttl.example.local. 60 IN A 10.0.0.4")},
	},
	{
		Qname: "txt.example.local.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.TXT(`txt.example.local. 300 IN TXT "hello world"`)},
	},
	{
		// A value without host has no address: the name exists, so NODATA.
		Qname: "txt.example.local.", Qtype: dns.TypeA,
		Ns: []dns.RR{SOA},
	},
	{
		Qname: "alias.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.CNAME("alias.example.local. 300 IN CNAME www.example.local."),
			test.A("www.example.local. 300 IN A 10.0.0.2"),
		},
	},
	{
		Qname: "alias.example.local.", Qtype: dns.TypeCNAME,
		Answer: []dns.RR{test.CNAME("alias.example.local. 300 IN CNAME www.example.local.")},
	},
	{
		Qname: "mail.example.local.", Qtype: dns.TypeMX,
		Answer: []dns.RR{test.MX("mail.example.local. 300 IN MX 20 mx1.example.local.")},
		Extra:  []dns.RR{test.A("mx1.example.local. 300 IN A 10.0.0.3")},
	},
	{
		Qname: "_db._tcp.example.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_db._tcp.example.local. 300 IN SRV 10 100 5432 db.example.local.")},
		Extra:  []dns.RR{test.A("db.example.local. 300 IN A 10.0.0.5")},
	},
	{
		Qname: "_w._udp.example.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV("_w._udp.example.local. 300 IN SRV 10 25 53 a._w._udp.example.local."),
			test.SRV("_w._udp.example.local. 300 IN SRV 10 75 53 b._w._udp.example.local."),
			test.SRV("_w._udp.example.local. 300 IN SRV 20 100 53 c._w._udp.example.local."),
		},
		Extra: []dns.RR{
			test.A("a._w._udp.example.local. 300 IN A 10.1.0.1"),
			test.A("b._w._udp.example.local. 300 IN A 10.1.0.2"),
			test.A("c._w._udp.example.local. 300 IN A 10.1.0.3"),
		},
	},
	{
		Qname: "_ts._tcp.example.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_ts._tcp.example.local. 300 IN SRV 10 100 80 _ts._tcp.example.local.")},
		Extra:  []dns.RR{test.A("_ts._tcp.example.local. 300 IN A 10.3.0.1")},
	},
	{
		Qname: "grp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("grp.example.local. 300 IN A 10.2.0.1"),
			test.A("grp.example.local. 300 IN A 10.2.0.2"),
		},
	},
	{
		// Wildcard label: every instance below _web.
		Qname: "*._web._tcp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("*._web._tcp.example.local. 300 IN A 1.1.1.1"),
			test.A("*._web._tcp.example.local. 300 IN A 1.1.1.2"),
			test.A("*._web._tcp.example.local. 300 IN A 1.1.1.3"),
		},
	},
	{
		Qname: "web-server01.any._tcp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("web-server01.any._tcp.example.local. 300 IN A 1.1.1.1")},
	},
	{
		Qname: "example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("example.local. 300 IN A 10.9.9.9")},
	},
	{
		Qname: "example.local.", Qtype: dns.TypeNS,
		Answer: []dns.RR{test.NS("example.local. 300 IN NS ns1.ns.dns.example.local.")},
		Extra:  []dns.RR{test.A("ns1.ns.dns.example.local. 300 IN A 10.9.0.1")},
	},
	{
		Qname: "example.local.", Qtype: dns.TypeSOA,
		Answer: []dns.RR{SOA},
	},
	{
		Qname: "1.0.0.10.in-addr.arpa.", Qtype: dns.TypePTR,
		Answer: []dns.RR{test.PTR("1.0.0.10.in-addr.arpa. 300 IN PTR reverse.example.local.")},
	},
	{
		Qname: "bad.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("bad.example.local. 300 IN A 10.4.0.1")},
	},
	{
		Qname: "both.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("both.example.local. 300 IN A 10.5.0.1"), test.A("both.example.local. 300 IN A 10.5.0.2")},
	},
	{
		Qname: "sib.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("sib.example.local. 300 IN A 10.6.0.1")},
	},
	{
		Qname: "nothere.example.local.", Qtype: dns.TypeA,
		Rcode: dns.RcodeNameError,
		Ns:    []dns.RR{SOA},
	},
	{
		// AAAA of a name with only an A record: NODATA.
		Qname: "a.example.local.", Qtype: dns.TypeAAAA,
		Ns: []dns.RR{SOA},
	},
	{
		// A type the plugin does not serve: NODATA for a name that exists...
		Qname: "a.example.local.", Qtype: dns.TypeHINFO,
		Ns: []dns.RR{SOA},
	},
	{
		// ...NXDOMAIN for one that does not.
		Qname: "nothere.example.local.", Qtype: dns.TypeHINFO,
		Rcode: dns.RcodeNameError,
		Ns:    []dns.RR{SOA},
	},
	{
		// NS below the apex is answered like an A lookup: NODATA here.
		Qname: "a.example.local.", Qtype: dns.TypeNS,
		Ns: []dns.RR{SOA},
	},
}
