package etcdsd

import (
	"context"
	"io"
	golog "log"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/test"
	"github.com/etcdsd/etcdsd/internal/devetcd"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestTLSAndLeastPrivilege runs etcd with client certificates and auth on, and a user
// whose role may read only one zone's prefix: the README's minimal role.
func TestTLSAndLeastPrivilege(t *testing.T) {
	srv, tf, admin := devetcd.StartTLSFor(t)
	ctx := context.Background()
	const secret = "s3cret-pw-in-no-log"
	for _, op := range []func() error{
		func() error { _, err := admin.Put(ctx, "/skydns/local/example/x", `{"host":"10.40.0.1"}`); return err },
		func() error { _, err := admin.Put(ctx, "/skydns/local/other/y", `{"host":"10.40.0.2"}`); return err },
		func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "dns-example"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "dns-example", "/skydns/local/example", "/skydns/local/example0", clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "dns", secret); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "dns", "dns-example"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}

	logs := &devetcd.Buffer{}
	golog.SetOutput(logs)
	defer golog.SetOutput(io.Discard)

	start := func(zone, extra string) *Etcdsd {
		stanza := "etcdsd " + zone + " {\n endpoint " + srv.Endpoint + "\n" + extra + "\n}"
		stanzas, err := parse(caddy.NewTestController("dns", stanza))
		if err != nil {
			t.Fatal(err)
		}
		e := stanzas[0]
		for _, w := range e.watchers {
			w.run()
		}
		t.Cleanup(func() { e.OnShutdown() })
		return e
	}
	tlsFull := "tls " + tf.ClientCert + " " + tf.ClientKey + " " + tf.CA
	allowed := start("example.local", tlsFull+"\n credentials dns "+secret)
	denied := start("other.local", tlsFull+"\n credentials dns "+secret)
	noCert := start("example.local", "tls "+tf.CA+"\n credentials dns "+secret)
	wrongPassword := start("example.local", tlsFull+"\n credentials dns not-"+secret)

	waitFor(t, "the permitted zone", allowed.Ready)
	serve(t, allowed, []test.Case{{
		Qname: "x.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("x.example.local. 300 IN A 10.40.0.1")},
	}})
	// The others never list: no permission, no client certificate, a wrong password. The
	// permitted one was ready within moments; give them far longer.
	waitFor(t, "permission and password failures logged", func() bool {
		l := logs.String()
		return strings.Contains(l, "permission denied") && strings.Contains(l, "authentication failed")
	})
	time.Sleep(2 * time.Second)
	for name, e := range map[string]*Etcdsd{"other zone": denied, "no client certificate": noCert, "wrong password": wrongPassword} {
		if e.Ready() {
			t.Errorf("%s: ready, want never", name)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("a password appears in the log:\n%s", logs.String())
	}
	for _, e := range []*Etcdsd{allowed, denied, noCert, wrongPassword} {
		e.OnShutdown() // before etcd closes, which otherwise waits for the streams
	}
}
