package etcdsd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/etcdsd/etcdsd/internal/index"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Prepared answers outlive changes that do not touch what they were built from, and
// only those: after every change of many shapes, every question gets from a plugin that
// keeps answers what one that keeps none (answer_cache 0) builds afresh.
func TestPreparedAnswersFollowChanges(t *testing.T) {
	for _, opts := range []string{"", "wildcards"} {
		t.Run("options="+opts, func(t *testing.T) {
			dir := "/pc" + opts
			at := func(k string) string { return dir + "/local/example/" + k }
			stanza := "etcdsd example.local {\n path " + dir + "\n " + opts + "\n"
			kept, fresh := startPlugin(t, stanza+"}"), startPlugin(t, stanza+" answer_cache 0\n}")
			names := []string{"example.local.", "_tcp.example.local.", "_web._tcp.example.local.", "a.example.local.",
				"b.a.example.local.", "x.a.example.local.", "alias.example.local.", "target.example.local.",
				"q.w.example.local.", "*.w.example.local.", "caps.example.local.", "CAPS.example.local.",
				"192.0.2.61.photos.example.local.", "61.photos.example.local.", "nothere.example.local.",
				"mail.example.local.", "ns.dns.example.local."}
			types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX, dns.TypeNS, dns.TypeSOA}
			compare := func(step string) {
				t.Helper()
				for _, name := range names {
					for _, qtype := range types {
						want := ask(fresh, name, qtype)
						for range 2 { // the second from the prepared answer
							if got := ask(kept, name, qtype); got != want {
								t.Fatalf("after %s, %s %s:\nprepared:\n%s\nafresh:\n%s", step, name, dns.TypeToString[qtype], got, want)
							}
						}
					}
				}
			}
			ctx := context.Background()
			steps := []struct {
				what string
				ops  []clientv3.Op
			}{
				{"a first service", []clientv3.Op{clientv3.OpPut(at("_tcp/_web/w1"), `{"host":"10.82.0.1","port":80}`)}},
				{"a second instance", []clientv3.Op{clientv3.OpPut(at("_tcp/_web/w2"), `{"host":"2001:db8::2","port":80}`)}},
				{"a name below another", []clientv3.Op{clientv3.OpPut(at("a/b"), `{"host":"10.82.0.3"}`)}},
				{"an alias to nothing", []clientv3.Op{clientv3.OpPut(at("alias"), `{"host":"target.example.local"}`)}},
				{"the alias's target", []clientv3.Op{clientv3.OpPut(at("target"), `{"host":"10.82.0.4","text":"t"}`)}},
				{"a wildcard", []clientv3.Op{clientv3.OpPut(at("w/*"), `{"host":"10.82.0.5"}`)}},
				{"a key in capitals", []clientv3.Op{clientv3.OpPut(at("CAPS"), `{"host":"10.82.0.6"}`)}},
				{"a dotted label", []clientv3.Op{clientv3.OpPut(at("photos/192.0.2.61"), `{"host":"192.0.2.61"}`)}},
				{"a mail exchanger", []clientv3.Op{clientv3.OpPut(at("mail"), `{"host":"target.example.local","mail":true,"priority":10}`)}},
				{"name servers", []clientv3.Op{clientv3.OpPut(at("dns/ns"), `{"host":"10.82.0.53"}`)}},
				{"an own record beside children", []clientv3.Op{clientv3.OpPut(at("a"), `{"host":"10.82.0.7"}`)}},
				{"a bad value", []clientv3.Op{clientv3.OpPut(at("a/bad"), `{"host":`)}},
				{"a change elsewhere", []clientv3.Op{clientv3.OpPut(at("zzz/u"), `{"host":"10.82.0.8"}`)}},
				{"the target's delete", []clientv3.Op{clientv3.OpDelete(at("target"))}},
				{"a transaction", []clientv3.Op{clientv3.OpPut(at("target"), `{"host":"10.82.0.9"}`), clientv3.OpDelete(at("CAPS")),
					clientv3.OpPut(at("_tcp/_web/w1"), `{"host":"10.82.0.10","port":8080}`)}},
				{"the wildcard's delete", []clientv3.Op{clientv3.OpDelete(at("w/*"))}},
				{"a prefix delete", []clientv3.Op{clientv3.OpDelete(at("a"), clientv3.WithPrefix())}},
				{"the dotted label's delete", []clientv3.Op{clientv3.OpDelete(at("photos/192.0.2.61"))}},
			}
			compare("the start")
			for _, s := range steps {
				resp, err := testEtcd.Client().Txn(ctx).Then(s.ops...).Commit()
				if err != nil {
					t.Fatal(err)
				}
				waitRevision(t, kept, resp.Header.Revision)
				waitRevision(t, fresh, resp.Header.Revision)
				compare(s.what)
			}
			// A change elsewhere keeps the answers that did not read it.
			w := kept.watchers[0]
			key := index.Question{Name: "_web._tcp.example.local.", Type: dns.TypeSRV}
			before := w.snapshot().Prepared(key, time.Now)
			if before == nil {
				t.Fatal("no prepared answer for _web._tcp.example.local. SRV")
			}
			waitRevision(t, kept, put(t, at("zzz/v"), `{"host":"10.82.0.11"}`))
			if after := w.snapshot().Prepared(key, time.Now); after != before {
				t.Error("a change elsewhere dropped the prepared answer of _web._tcp.example.local. SRV")
			}
		})
	}
}

// ask returns e's response to a question as text, records in order.
func ask(e *Etcdsd, name string, qtype uint16) string {
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	m := new(dns.Msg).SetQuestion(name, qtype)
	rcode, err := e.ServeDNS(context.Background(), rec, m)
	if rec.Msg == nil {
		return fmt.Sprintf("rcode %s, error %v", dns.RcodeToString[rcode], err)
	}
	rec.Msg.Id = 0
	return fmt.Sprint(rrset(rec.Msg.Answer), "\n--\n", rrset(rec.Msg.Ns), "\n--\n", rrset(rec.Msg.Extra), "\n", dns.RcodeToString[rec.Msg.Rcode], rec.Msg.Truncated)
}
