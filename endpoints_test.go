package etcdsd

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/etcdsd/etcdsd/internal/devetcd"
)

// An etcd that cannot be reached is logged as what stops it, not as the client's
// "context deadline exceeded": a scheme the server does not speak (which only the
// Corefile can fix, so start-up does not wait for it), nothing listening, a name that
// does not resolve, a server silent at the TLS handshake.
func TestUnreachableEndpointsSayWhy(t *testing.T) {
	tlsEtcd, tf, _ := devetcd.StartTLSFor(t)
	plain := strings.TrimPrefix(testEtcd.Endpoint, "http://")
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	clientCert := "tls " + tf.ClientCert + " " + tf.ClientKey + " " + tf.CA
	for _, tc := range []struct {
		name, endpoint, tls, cause string
		definitive                 bool
	}{
		{"https to a plaintext etcd", "https://" + plain, "", "https://" + plain + ": the server speaks plaintext, not TLS: use http://", true},
		{"https with tls to a plaintext etcd", "https://" + plain, clientCert, "the server speaks plaintext, not TLS", true},
		{"HOST:PORT with tls to a plaintext etcd", plain, clientCert, plain + ": the server speaks plaintext, not TLS", true},
		{"http to a TLS etcd", strings.Replace(tlsEtcd.Endpoint, "https", "http", 1), "", ": the server speaks TLS: use https://", true},
		{"nothing listens", "http://127.0.0.1:" + strconv.Itoa(devetcd.FreePortFor(t)), "", "connection refused: nothing listens on 127.0.0.1:", false},
		{"a name that does not resolve", "http://etcd.invalid:2379", "", "http://etcd.invalid:2379: the name does not resolve", false},
		{"silent at the TLS handshake", "https://" + silent.Addr().String(), "", "no answer to the TLS handshake within", false},
		{"two endpoints, each its cause", "http://127.0.0.1:" + strconv.Itoa(devetcd.FreePortFor(t)) + " https://" + plain, "", "; https://" + plain + ": the server speaks plaintext", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := captureLog(t)
			stanzas, err := parse(caddy.NewTestController("dns", "etcdsd example.local {\n endpoint "+tc.endpoint+"\n "+tc.tls+"\n startup_timeout 1h\n}"))
			if err != nil {
				t.Fatal(err)
			}
			e := stanzas[0]
			started := make(chan struct{})
			go func() {
				e.OnStartup()
				close(started)
			}()
			t.Cleanup(func() { e.OnShutdown() })
			if tc.definitive {
				select {
				case <-started:
				case <-time.After(time.Minute):
					t.Fatal("OnStartup waits for its startup_timeout")
				}
			}
			for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), tc.cause); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the log does not say %q:\n%s", tc.cause, logs)
				}
			}
			if strings.Contains(logs.String(), "deadline exceeded") {
				t.Errorf("the log speaks of a deadline:\n%s", logs)
			}
			t.Log(logs)
		})
	}
}

// An etcd that goes away after the start is logged as what stops it too.
func TestEtcdGoneSaysWhy(t *testing.T) {
	_, srv, cli := devetcd.StartFor(t)
	if _, err := cli.Put(t.Context(), "/skydns/local/example/x", `{"host":"10.0.0.1"}`); err != nil {
		t.Fatal(err)
	}
	logs := captureLog(t)
	startPlugin(t, "etcdsd example.local {\n endpoint "+srv.Endpoint+"\n}")
	srv.Close()
	cause := srv.Endpoint + ": connection refused: nothing listens on"
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), cause); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say %q:\n%s", cause, logs)
		}
	}
	t.Log(logs)
}
