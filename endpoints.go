package etcdsd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The endpoint forms the etcd client dials (go.etcd.io/etcd/client/v3/internal/endpoint):
// http:// and https:// URLs, unix and unixs sockets (unix:PATH, unix://PATH), and a bare
// HOST:PORT.
var endpointSchemes = []string{"http", "https", "unix", "unixs"}

// checkEndpoint refuses an endpoint the etcd client cannot dial, or dials otherwise than
// it reads: with a bad scheme or port it would only time out on every request. It warns
// of a part the client ignores.
func checkEndpoint(ep string) (warning string, err error) {
	if _, _, ok := socket(ep); ok {
		return "", nil
	}
	if path, _, ok := socket(strings.ToLower(ep)); !ok && path == "" && (strings.HasPrefix(ep, "unix:") || strings.HasPrefix(ep, "unixs:")) {
		return "", fmt.Errorf("%q names no socket: write unix:///run/etcd.sock, or unix://localhost:2379 for etcd's socket of that name in its directory", ep)
	}
	if l := strings.ToLower(ep); strings.HasPrefix(l, "unix:") || strings.HasPrefix(l, "unixs:") {
		return "", fmt.Errorf("%q: the etcd client knows sockets only as unix: and unixs:, in lower case", ep)
	}
	if strings.Contains(ep, ",") {
		return "", fmt.Errorf("%q: give each endpoint as an argument of its own, separated by spaces (etcdctl's --endpoints takes commas, the Corefile does not)", ep)
	}
	if !strings.Contains(ep, "://") {
		host, port, err := net.SplitHostPort(ep)
		if err != nil || host == "" {
			return "", fmt.Errorf("%q is neither a URL such as http://127.0.0.1:2379 nor a HOST:PORT", ep)
		}
		return "", checkPort(ep, port)
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", fmt.Errorf("%q is no URL: %v", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: the scheme %q is none of %s", ep, u.Scheme, strings.Join(endpointSchemes, ", "))
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%q names no host", ep)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q: the etcd client ignores a user in the URL; give it with credentials", ep)
	}
	if u.Port() == "" {
		// gRPC would dial the host without a port and fail every time.
		return "", fmt.Errorf("%q names no port: etcd's client port is usually 2379, as in %s://%s:2379", ep, u.Scheme, u.Hostname())
	}
	if err := checkPort(ep, u.Port()); err != nil {
		return "", err
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return fmt.Sprintf("endpoint %q: the etcd client ignores its path and query", ep), nil
	}
	return "", nil
}

func checkPort(ep, port string) error {
	if port == "" {
		return fmt.Errorf("%q names no port", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", ep, port)
	}
	return nil
}

// socket returns the path of a unix or unixs endpoint, as the etcd client reads it.
func socket(ep string) (path string, overTLS, ok bool) {
	for _, scheme := range []string{"unixs", "unix"} {
		if rest, found := strings.CutPrefix(ep, scheme+":"); found {
			rest = strings.TrimPrefix(rest, "//")
			return rest, scheme == "unixs", rest != ""
		}
	}
	return "", false, false
}

// errNotTLS and errTLS are endpoints whose scheme and server disagree: the client would
// only time out (gRPC retries the failed handshake without saying why), and only the
// Corefile can fix them.
var (
	errNotTLS = errors.New("the server speaks plaintext, not TLS")
	errTLS    = errors.New("the server speaks TLS only")
	// errRefused is an endpoint where nothing listens.
	errRefused = errors.New("connection refused")
	// errClientCert is a TLS server that wants a client certificate the tls option does
	// not give.
	errClientCert = errors.New("the server requires a client certificate")
)

// overTLS reports whether the etcd client dials its endpoints over TLS. Its balancer
// takes one transport for all of them, from the first endpoint (clientv3's
// dialWithBalancer): TLS for https and unixs; for HOST:PORT and unix when tls is set;
// never for http.
func overTLS(endpoints []string, cfg *tls.Config) bool {
	first := endpoints[0]
	if _, tlsAlways, ok := socket(first); ok {
		return tlsAlways || cfg != nil
	}
	if u, err := url.Parse(first); err == nil && strings.Contains(first, "://") {
		return u.Scheme == "https"
	}
	return cfg != nil
}

// target is the network and address of an endpoint, and the name the client verifies the
// server's certificate for: gRPC's TLS credentials drop the port from the authority the
// etcd client gives, which for a socket is its file name (etcd names its own sockets
// HOST:PORT, as in localhost:2379).
func target(ep string) (network, addr, serverName string) {
	if path, _, ok := socket(ep); ok {
		name := filepath.Base(path)
		if host, _, err := net.SplitHostPort(name); err == nil {
			name = host
		}
		return "unix", path, name
	}
	u, err := url.Parse(ep)
	if err != nil || !strings.Contains(ep, "://") {
		host, _, _ := net.SplitHostPort(ep)
		return "tcp", ep, host
	}
	return "tcp", u.Host, u.Hostname()
}

// probeEndpoint connects to one endpoint as the client would and says what stops it: the
// name does not resolve, nothing listens, no answer in time, TLS on one side only, or a
// certificate that fails verification. nil: reached, or nothing known against it.
func probeEndpoint(ctx context.Context, ep string, cfg *tls.Config, overTLS bool) error {
	network, addr, serverName := target(ep)
	conn, err := dial(ctx, network, addr)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%s: the name does not resolve: %w", ep, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: %w: nothing listens on %s", ep, errRefused, addr)
	case isTimeout(err):
		return fmt.Errorf("%s: no answer from %s within %v", ep, addr, probeTimeout)
	case err != nil:
		return fmt.Errorf("%s: %w", ep, err)
	}
	conn.Close()
	if !overTLS {
		if plaintextHTTP(ctx, network, addr) {
			return nil
		}
		// Not a plaintext server, or a silent one: a TLS one takes a handshake.
		err := handshake(ctx, network, addr, &tls.Config{InsecureSkipVerify: true})
		var (
			alert  tls.AlertError
			verify *tls.CertificateVerificationError
		)
		switch {
		case err == nil || errors.As(err, &alert) || errors.As(err, &verify) || clientCertRefused(err):
			return fmt.Errorf("%s: %w: %s", ep, errTLS, schemeFix(ep, true))
		case isTimeout(err):
			return fmt.Errorf("%s: no answer from %s within %v", ep, addr, probeTimeout)
		}
		return nil
	}
	c := cfg.Clone()
	if c == nil {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = serverName
	}
	err = handshake(ctx, network, addr, c)
	var (
		record tls.RecordHeaderError
		verify *tls.CertificateVerificationError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &verify):
		return fmt.Errorf("%s: %w", ep, err)
	case clientCertRefused(err) && len(c.Certificates) == 0:
		return fmt.Errorf("%s: %w: give the tls option a CERT and KEY (%v)", ep, errClientCert, err)
	case (errors.As(err, &record) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && plaintextHTTP(ctx, network, addr):
		return fmt.Errorf("%s: %w: %s", ep, errNotTLS, schemeFix(ep, false))
	case isTimeout(err):
		return fmt.Errorf("%s: no answer to the TLS handshake within %v", ep, probeTimeout)
	}
	return fmt.Errorf("%s: TLS handshake: %w", ep, err)
}

// schemeFix says how to make the client dial ep over TLS, or without, in ep's own form.
func schemeFix(ep string, overTLS bool) string {
	_, _, isSocket := socket(ep)
	switch {
	case isSocket && overTLS:
		return "use unixs:// and, for a private CA or a client certificate, the tls option"
	case isSocket:
		return "use unix:// without the tls option"
	case !strings.Contains(ep, "://") && overTLS:
		return "set the tls option, or use https://"
	case !strings.Contains(ep, "://"):
		return "drop the tls option, or use http://"
	case overTLS:
		return "use https:// and, for a private CA or a client certificate, the tls option"
	}
	return "use http:// (a plaintext etcd needs no tls option)"
}

// dial connects to addr within probeTimeout, and gives what is said on the connection
// probeTimeout more.
func dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(probeTimeout))
	return conn, nil
}

// handshake makes a TLS handshake with addr within dial's deadlines.
func handshake(ctx context.Context, network, addr string, cfg *tls.Config) error {
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil || len(cfg.Certificates) > 0 || cfg.GetClientCertificate != nil {
		return err
	}
	// Under TLS 1.3 the client's handshake ends before the server has read its (missing)
	// certificate: a refusal comes as an alert on the first read (RFC 8446 section 4.4.2.4).
	if _, err := io.WriteString(tc, "GET /version HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	_, err = tc.Read(make([]byte, 1))
	if clientCertRefused(err) {
		return err
	}
	return nil
}

// clientCertRefused reports whether err is a server's alert for a client certificate it
// wants and did not get: certificate_required (TLS 1.3), bad_certificate (TLS 1.2 of some
// servers; Go's, and so etcd's, send the handshake_failure of any other mismatch).
func clientCertRefused(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "tls: certificate required") || strings.Contains(err.Error(), "tls: bad certificate"))
}

// plaintextHTTP reports whether the server at addr answers, within dial's deadlines, an
// HTTP request sent in the clear, as etcd's client port does (GET /version) when it serves
// plaintext, alone or beside TLS, or HTTP/2 in the clear (h2c), as a port that serves
// only gRPC does (etcd's --listen-client-http-urls moves HTTP elsewhere). A TLS-only
// server closes the connection (etcd), or answers with the error the TLS side of Go's
// HTTP server writes.
func plaintextHTTP(ctx context.Context, network, addr string) bool {
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /version HTTP/1.0\r\n\r\n"); err != nil {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(conn, 512))
	if bytes.HasPrefix(b, []byte("HTTP/")) && !bytes.Contains(b, []byte("HTTPS server")) {
		return true
	}
	return h2c(ctx, network, addr)
}

// h2c reports whether the server at addr answers HTTP/2's connection preface, sent in the
// clear, with its SETTINGS frame (RFC 9113 section 3.4), as a gRPC server does.
func h2c(ctx context.Context, network, addr string) bool {
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	fr := http2.NewFramer(conn, conn)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil || fr.WriteSettings() != nil {
		return false
	}
	f, err := fr.ReadFrame()
	_, settings := f.(*http2.SettingsFrame)
	return err == nil && settings
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// absent reports whether err says that no endpoint has an etcd at all yet: nothing listens
// at each, its name does not resolve, or its socket does not exist. A client made now
// could only wait; retrying the connection says so at once, each time it fails.
func absent(err error) bool {
	var each endpointErrors
	if !errors.As(err, &each) {
		return false
	}
	return !slices.ContainsFunc(each, func(err error) bool {
		var dnsErr *net.DNSError
		return !(errors.Is(err, errRefused) || errors.As(err, &dnsErr) || errors.Is(err, syscall.ENOENT))
	})
}

// endpointErrors is why none of a stanza's endpoints can be reached, one error each.
type endpointErrors []error

func (e endpointErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e endpointErrors) Unwrap() []error { return e }

// diagnose probes every endpoint and returns nil when one of them can be reached as
// configured, and otherwise what stops each. The client itself only reports that its
// requests time out.
func diagnose(ctx context.Context, endpoints []string, cfg *tls.Config) error {
	errs := make(endpointErrors, len(endpoints))
	done := make(chan struct{}, len(endpoints))
	secure := overTLS(endpoints, cfg)
	for i, ep := range endpoints {
		go func() {
			errs[i] = probeEndpoint(ctx, ep, cfg, secure)
			done <- struct{}{}
		}()
	}
	for range endpoints {
		<-done
	}
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errs
}

// unreachable reports whether err is the client's way of saying it reached no member:
// its deadline passed, or gRPC found no connection.
func unreachable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.Unavailable
}
