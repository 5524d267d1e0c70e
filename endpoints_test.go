package etcdsd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"google.golang.org/grpc"
)

// An etcd that cannot be reached is logged as what stops it, not as the client's
// "context deadline exceeded": a scheme the server does not speak (which only the
// Corefile can fix, so start-up does not wait for it), nothing listening, a name that
// does not resolve, a server silent at the TLS handshake.
func TestUnreachableEndpointsSayWhy(t *testing.T) {
	tlsEtcd, tf, _ := devetcd.StartTLSFor(t)
	plain := strings.TrimPrefix(testEtcd.Server().Endpoint, "http://")
	silent := silentListener(t)
	clientCert := "tls " + tf.ClientCert + " " + tf.ClientKey + " " + tf.CA
	for _, tc := range []struct {
		name, endpoint, tls, cause string
		definitive                 bool
	}{
		{"https to a plaintext etcd", "https://" + plain, "", "https://" + plain + ": the server speaks plaintext, not TLS: use http://", true},
		{"https with tls to a plaintext etcd", "https://" + plain, clientCert, "the server speaks plaintext, not TLS", true},
		{"HOST:PORT with tls to a plaintext etcd", plain, clientCert, plain + ": the server speaks plaintext, not TLS", true},
		{"http to a TLS etcd", strings.Replace(tlsEtcd.Endpoint, "https", "http", 1), "", ": the server speaks TLS only: use https://", true},
		{"nothing listens", "http://127.0.0.1:" + strconv.Itoa(devetcd.FreePortFor(t)), "", "connection refused: nothing listens on 127.0.0.1:", false},
		{"a name that does not resolve", "http://etcd.invalid:2379", "", "http://etcd.invalid:2379: the name does not resolve", false},
		{"silent at the TLS handshake", "https://" + silent, "", "no answer to the TLS handshake within", false},
		{"two endpoints, each its cause", "http://127.0.0.1:" + strconv.Itoa(devetcd.FreePortFor(t)) + " http://" + silent, "", "; http://" + silent + ": no answer from", false},
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
			if line := logLine(logs.String(), tc.cause); strings.Contains(line, "deadline exceeded") && strings.Index(line, "deadline exceeded") < strings.Index(line, tc.cause) {
				t.Errorf("the log speaks of a deadline before the cause:\n%s", line)
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

// logLine returns the first line of logs that holds s.
func logLine(logs, s string) string {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// What the probe finds at servers of each kind, from memory: it must name a scheme the
// server does not speak, and find nothing against a server that speaks both on one port
// (etcd's --listen-client-urls http://H:P,https://H:P) or against a unix socket.
func TestProbeEndpoint(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"etcdserver":"3.7.2"}`) })
	plain := httptest.NewServer(ok)
	defer plain.Close()
	tlsOnly := httptest.NewTLSServer(ok)
	defer tlsOnly.Close()
	both := bothOnOnePort(t, ok)
	silent := silentListener(t)
	sock := filepath.Join(t.TempDir(), "etcd.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ul, ok)
	defer ul.Close()
	// A TLS socket named as etcd names its own, HOST:PORT: the certificate is for HOST.
	tlsSock := filepath.Join(t.TempDir(), "example.com:2379")
	tl, err := net.Listen("unix", tlsSock)
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(tls.NewListener(tl, tlsOnly.TLS), ok)
	defer tl.Close()
	trusting := &tls.Config{RootCAs: tlsOnly.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	// A port that serves only gRPC in the clear (etcd with --listen-client-http-urls).
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcOnly := grpc.NewServer()
	go grpcOnly.Serve(gl)
	defer grpcOnly.Stop()
	host := func(s *httptest.Server) string {
		return strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	}
	// TLS servers that want a client certificate, over TLS 1.3 and 1.2.
	wantsCert := func(version uint16) string {
		s := httptest.NewUnstartedServer(ok)
		s.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, MinVersion: version, MaxVersion: version}
		s.StartTLS()
		t.Cleanup(s.Close)
		return host(s)
	}
	tls13, tls12 := wantsCert(tls.VersionTLS13), wantsCert(tls.VersionTLS12)
	insecure := &tls.Config{InsecureSkipVerify: true}

	for _, tc := range []struct {
		endpoint string
		cfg      *tls.Config
		want     error  // errors.Is; nil with cause "": nothing found
		cause    string // in the error
	}{
		{"http://" + host(plain), nil, nil, ""},
		{"https://" + host(plain), nil, errNotTLS, "use http://"},
		{host(plain), insecure, errNotTLS, "drop the tls option"},
		{"https://" + host(tlsOnly), insecure, nil, ""},
		{"http://" + host(tlsOnly), nil, errTLS, "use https://"},
		{host(tlsOnly), nil, errTLS, "set the tls option"},
		{"https://" + host(tlsOnly), nil, nil, "certificate signed by unknown authority"},
		{"http://" + both, nil, nil, ""},
		{"https://" + both, insecure, nil, ""},
		{"http://" + silent, nil, nil, "no answer from " + silent + " within 500ms"},
		{"https://" + silent, nil, nil, "no answer to the TLS handshake within 500ms"},
		{"http://" + gl.Addr().String(), nil, nil, ""},
		{"https://" + gl.Addr().String(), insecure, errNotTLS, "use http://"},
		{"https://" + tls13, insecure, errClientCert, "give the tls option a CERT and KEY"},
		// TLS 1.2's refusal is a handshake_failure, which a cipher mismatch sends too.
		{"https://" + tls12, insecure, nil, "TLS handshake: remote error"},
		{"http://" + tls13, nil, errTLS, ""},
		{"unix:" + sock, nil, nil, ""},
		{"unix://" + sock, nil, nil, ""},
		{"unixs://" + sock, insecure, errNotTLS, "use unix:// without the tls option"},
		{"unixs://" + tlsSock, trusting, nil, ""},
		{"unix://" + tlsSock, nil, errTLS, "use unixs://"},
	} {
		err := probeEndpoint(context.Background(), tc.endpoint, tc.cfg, overTLS([]string{tc.endpoint}, tc.cfg))
		switch {
		case tc.want == nil && tc.cause == "" && err != nil:
			t.Errorf("%s: %v, want nothing found", tc.endpoint, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.endpoint, err, tc.want)
		case tc.cause != "" && (err == nil || !strings.Contains(err.Error(), tc.cause)):
			t.Errorf("%s: %v, want it to say %q", tc.endpoint, err, tc.cause)
		}
	}
}

// bothOnOnePort serves h over TLS and in the clear on one port, as etcd does when its
// client URLs name both schemes at one address, and returns its address.
func bothOnOnePort(t *testing.T, h http.Handler) string {
	srv := httptest.NewUnstartedServer(h)
	srv.StartTLS() // makes the certificate
	srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	plainConns, tlsConns := make(chan net.Conn), make(chan net.Conn)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(plainConns)
				close(tlsConns)
				return
			}
			go func() {
				b := bufio.NewReader(c)
				first, err := b.Peek(1)
				if err != nil {
					c.Close()
					return
				}
				pc := peeked{c, b}
				if first[0] == 0x16 { // a TLS handshake record
					tlsConns <- pc
				} else {
					plainConns <- pc
				}
			}()
		}
	}()
	go http.Serve(chanListener{plainConns, l}, h)
	go http.Serve(tls.NewListener(chanListener{tlsConns, l}, srv.TLS), h)
	return l.Addr().String()
}

type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

type chanListener struct {
	conns <-chan net.Conn
	net.Listener
}

func (l chanListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}

// silentListener accepts connections and says nothing on them, as a frozen etcd does.
func silentListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}

// The etcd client dials every endpoint as it dials the first (clientv3's balancer): an
// https:// after an http:// one is dialed in the clear, and one endpoint that answers is
// enough.
func TestDiagnoseTakesTheFirstEndpointsScheme(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	plain := strings.TrimPrefix(httptest.NewServer(ok).URL, "http://")
	refused := "127.0.0.1:" + strconv.Itoa(devetcd.FreePortFor(t))
	for _, tc := range []struct {
		endpoints []string
		cause     string // in the error; "": reachable
	}{
		{[]string{"http://" + plain, "https://" + plain}, ""},
		{[]string{"https://" + plain, "http://" + plain}, "the server speaks plaintext, not TLS"},
		{[]string{"http://" + refused, "http://" + plain}, ""},
		{[]string{"http://" + refused, "http://" + refused}, "connection refused"},
	} {
		err := diagnose(context.Background(), tc.endpoints, nil)
		if tc.cause == "" && err != nil || tc.cause != "" && !strings.Contains(fmt.Sprint(err), tc.cause) {
			t.Errorf("%v: %v, want %q", tc.endpoints, err, tc.cause)
		}
	}
}
