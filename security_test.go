package etcdsd

import (
	"context"
	"fmt"
	"io"
	golog "log"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/etcdsd/etcdsd/internal/devetcd"

	"github.com/miekg/dns"
)

const secret = "s3cret-pw-in-no-log"

// authEtcd starts an etcd with client certificates and auth on, holding records of the
// zones example.local (and a sibling prefix, example-old), other.local and lone.local
// (an apex key alone), and users whose roles grant what operators grant.
func authEtcd(t *testing.T) (*devetcd.Server, devetcd.TLSFiles) {
	srv, tf, admin := devetcd.StartTLSFor(t)
	ctx := context.Background()
	for k, v := range map[string]string{
		"/skydns/local/example/x":     `{"host":"10.40.0.1"}`,
		"/skydns/local/example-old/x": `{"host":"10.40.0.3"}`,
		"/skydns/local/other/y":       `{"host":"10.40.0.2"}`,
		"/skydns/local/lone":          `{"host":"10.40.0.9"}`,
	} {
		if _, err := admin.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	err := devetcd.EnableAuth(ctx, admin, "root-pw",
		// The natural grant: the zone's keys below it, as etcdctl grant-permission --prefix
		// /skydns/local/example/ gives it.
		devetcd.Reader{User: "natural", Password: secret, Ranges: [][2]string{devetcd.PrefixRange("/skydns/local/example/"), devetcd.PrefixRange("/skydns/local/lone/")}},
		// Everything under the path.
		devetcd.Reader{User: "wide", Password: secret, Ranges: [][2]string{devetcd.PrefixRange("/skydns/")}},
		// The zone's key and every key below it, and nothing else: this README's earlier grant.
		devetcd.Reader{User: "ranged", Password: secret, Ranges: [][2]string{{"/skydns/local/example", "/skydns/local/example0"}}},
		// The keys below a zone and, on its own, the zone's apex key.
		devetcd.Reader{User: "apex", Password: secret, Ranges: [][2]string{devetcd.PrefixRange("/skydns/local/lone/"), {"/skydns/local/lone", ""}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return srv, tf
}

// captureLog sends the plugin's log to a buffer until the test ends.
func captureLog(t *testing.T) *devetcd.Buffer {
	logs := &devetcd.Buffer{}
	golog.SetOutput(logs)
	t.Cleanup(func() { golog.SetOutput(io.Discard) })
	return logs
}

// stanzaOn parses one etcdsd stanza for srv with the given lines.
func stanzaOn(t *testing.T, srv *devetcd.Server, zone string, lines ...string) *Etcdsd {
	t.Helper()
	stanza := "etcdsd " + zone + " {\n endpoint " + srv.Endpoint + "\n " + strings.Join(lines, "\n ") + "\n}"
	stanzas, err := parse(caddy.NewTestController("dns", stanza))
	if err != nil {
		t.Fatal(err)
	}
	e := stanzas[0]
	e.Next = test.NextHandler(dns.RcodeRefused, nil)
	return e
}

// Every role that lets the etcd plugin serve a zone lets etcdsd serve it.
func TestRoles(t *testing.T) {
	srv, tf := authEtcd(t)
	logs := captureLog(t)
	tlsFull := "tls " + tf.ClientCert + " " + tf.ClientKey + " " + tf.CA
	for _, tc := range []struct {
		user, zone string
		want       test.Case
	}{
		{"natural", "example.local", test.Case{Qname: "x.example.local.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("x.example.local. 300 IN A 10.40.0.1")}}},
		{"wide", "example.local", test.Case{Qname: "x.example.local.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("x.example.local. 300 IN A 10.40.0.1")}}},
		{"ranged", "example.local", test.Case{Qname: "x.example.local.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("x.example.local. 300 IN A 10.40.0.1")}}},
		// The apex key, read on its own where the role allows it.
		{"apex", "lone.local", test.Case{Qname: "lone.local.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("lone.local. 300 IN A 10.40.0.9")}}},
		// Where it does not, the zone is served without it: the apex exists, NODATA.
		{"natural", "lone.local", test.Case{Qname: "lone.local.", Qtype: dns.TypeA,
			Ns: []dns.RR{test.SOA("lone.local. 30 IN SOA ns.dns.lone.local. hostmaster.lone.local. 0 7200 1800 86400 30")}}},
	} {
		t.Run(tc.user+" "+tc.zone, func(t *testing.T) {
			e := stanzaOn(t, srv, tc.zone, tlsFull, "credentials "+tc.user+" "+secret)
			e.OnStartup()
			defer e.OnShutdown()
			if !e.Ready() {
				t.Fatalf("not ready after OnStartup:\n%s", logs)
			}
			serveIgnoringSerial(t, e, tc.want)
		})
	}
	if want := "Reading /skydns/local/example as [[/skydns/local/example/, /skydns/local/example0)], the part of [/skydns/local/example, /skydns/local/example0) the etcd role grants"; !strings.Contains(logs.String(), want) {
		t.Errorf("the log does not say %q:\n%s", want, logs)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("a password appears in the log:\n%s", logs)
	}
}

// serveIgnoringSerial runs tc with the SOA serials of the response set to tc's.
func serveIgnoringSerial(t *testing.T, e *Etcdsd, tc test.Case) {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := e.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
		t.Fatal(err)
	}
	for _, rr := range append(rec.Msg.Answer, rec.Msg.Ns...) {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Serial = 0
		}
	}
	if err := test.SortAndCheck(rec.Msg, tc); err != nil {
		t.Error(err)
	}
}

// Errors that only an operator can fix do not hold CoreDNS's start for startup_timeout
// (an hour here): the zone gets SERVFAIL at once, is not ready, and its cause is logged
// once, while the other zones answer.
func TestDefinitiveErrorsFailFast(t *testing.T) {
	srv, tf := authEtcd(t)
	other, err := devetcd.WriteTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clientCert := "tls " + tf.ClientCert + " " + tf.ClientKey + " "
	for _, tc := range []struct {
		name, zone, tls, credentials, cause string
	}{
		{"wrong password", "example.local", clientCert + tf.CA, "natural not-" + secret, "authentication failed"},
		{"unknown user", "example.local", clientCert + tf.CA, "nobody " + secret, "authentication failed"},
		{"a zone the role may not read", "other.local", clientCert + tf.CA, "natural " + secret, "reading [/skydns/local/other/, /skydns/local/other0): etcdserver: permission denied"},
		{"a server certificate of another CA", "example.local", clientCert + other.CA, "natural " + secret, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := captureLog(t)
			denied := stanzaOn(t, srv, tc.zone, tc.tls, "credentials "+tc.credentials, "startup_timeout 1h")
			allowed := stanzaOn(t, srv, "example.local", clientCert+tf.CA, "credentials natural "+secret, "startup_timeout 1h")
			for _, e := range []*Etcdsd{denied, allowed} {
				started := make(chan struct{})
				go func() {
					e.OnStartup()
					close(started)
				}()
				t.Cleanup(func() { e.OnShutdown() })
				select {
				case <-started:
				case <-time.After(time.Minute):
					t.Fatal("OnStartup waits for its startup_timeout")
				}
			}
			if denied.Ready() || !allowed.Ready() {
				t.Errorf("ready: the failing stanza %v, the other %v; want false, true", denied.Ready(), allowed.Ready())
			}
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if rcode, _ := denied.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("y."+tc.zone+".", dns.TypeA)); rcode != dns.RcodeServerFailure {
				t.Errorf("want SERVFAIL, got %s", dns.RcodeToString[rcode])
			}
			serve(t, allowed, []test.Case{{Qname: "x.example.local.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("x.example.local. 300 IN A 10.40.0.1")}}})
			time.Sleep(time.Second) // retries, which must not log again
			if n := strings.Count(logs.String(), tc.cause); n != 1 {
				t.Errorf("the cause %q logged %d times, want once:\n%s", tc.cause, n, logs)
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a password appears in the log:\n%s", logs)
			}
		})
	}
}

// Stanzas share one start-up deadline: with etcd away, two stanzas keep CoreDNS's port shut
// for one startup_timeout, not two.
func TestStartupOneDeadline(t *testing.T) {
	dead := devetcd.FreePortFor(t)
	stanza := fmt.Sprintf("etcdsd a.local {\n endpoint http://127.0.0.1:%d\n startup_timeout 2s\n}\n", dead)
	// The second stanza has two zones, and so two watches to wait for.
	stanzas, err := parse(caddy.NewTestController("dns", stanza+strings.Replace(stanza, "a.local", "b.local c.local", 1)))
	if err != nil {
		t.Fatal(err)
	}
	g := &group{}
	for _, e := range stanzas {
		g.members = append(g.members, e)
		e.group = g
		t.Cleanup(func() { e.OnShutdown() })
	}
	started := time.Now()
	for _, e := range stanzas {
		e.OnStartup()
	}
	// The first OnStartup started the second stanza's watch too.
	if stanzas[1].watchers[0].done == nil {
		t.Error("the second stanza's watch did not start with the first")
	}
	if waited := time.Since(started); waited >= 4*time.Second {
		t.Errorf("start-up waited %v for two stanzas of startup_timeout 2s", waited)
	}
}
