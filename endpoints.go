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
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The endpoint forms the etcd client dials (go.etcd.io/etcd/client/v3/internal/endpoint):
// http:// and https:// URLs, unix:// and unixs:// sockets, and a bare host:port.
var endpointSchemes = []string{"http", "https", "unix", "unixs"}

// checkEndpoint refuses an endpoint the etcd client cannot dial: with any other scheme it
// would only time out on every request.
func checkEndpoint(ep string) error {
	if !strings.Contains(ep, "://") {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return fmt.Errorf("%q is neither a URL such as http://127.0.0.1:2379 nor a HOST:PORT", ep)
		}
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("%q is no URL: %v", ep, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" || u.Hostname() == "" {
			return fmt.Errorf("%q names no host", ep)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return fmt.Errorf("%q has a path or query, which the etcd client ignores", ep)
		}
	case "unix", "unixs":
	default:
		return fmt.Errorf("%q: the scheme %q is none of %s", ep, u.Scheme, strings.Join(endpointSchemes, ", "))
	}
	return nil
}

// errNotTLS and errTLS are endpoints whose scheme and server disagree: the client would
// only time out (gRPC retries the failed handshake without saying why), and only the
// Corefile can fix them.
var (
	errNotTLS = errors.New("the server speaks plaintext, not TLS")
	errTLS    = errors.New("the server speaks TLS")
)

// target is how the etcd client reaches an endpoint: network, address, and whether over
// TLS (https and unixs always; a bare HOST:PORT or unix when tls is set).
func target(ep string, cfg *tls.Config) (network, addr string, overTLS bool) {
	for _, s := range []string{"unix", "unixs"} {
		if path, ok := strings.CutPrefix(ep, s+"://"); ok {
			return "unix", path, s == "unixs" || s == "unix" && cfg != nil
		}
	}
	u, err := url.Parse(ep)
	if err != nil || !strings.Contains(ep, "://") {
		return "tcp", ep, cfg != nil
	}
	return "tcp", u.Host, u.Scheme == "https"
}

// probeEndpoint connects to one endpoint as the client would and says what stops it:
// the name does not resolve, nothing listens, no answer in time, or TLS on one side only,
// or a certificate that fails verification.
func probeEndpoint(ctx context.Context, ep string, cfg *tls.Config) error {
	network, addr, overTLS := target(ep, cfg)
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%s: the name does not resolve: %w", ep, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: connection refused: nothing listens on %s", ep, addr)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("%s: no answer from %s within %v", ep, addr, probeTimeout)
	case err != nil:
		return fmt.Errorf("%s: %w", ep, err)
	}
	defer conn.Close()
	c := &tls.Config{InsecureSkipVerify: true} // only asks whether the server speaks TLS
	if overTLS {
		c = cfg.Clone()
		if c == nil {
			c = &tls.Config{}
		}
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(addr)
		}
	}
	err = tls.Client(conn, c).HandshakeContext(ctx)
	var (
		record *tls.RecordHeaderError
		alert  tls.AlertError
		verify *tls.CertificateVerificationError
	)
	switch {
	case overTLS && errors.As(err, &verify):
		return fmt.Errorf("%s: %w", ep, err)
	case overTLS && (errors.As(err, &record) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && plaintextHTTP(ctx, network, addr):
		return fmt.Errorf("%s: %w: use http:// (a plaintext etcd needs no tls option)", ep, errNotTLS)
	case overTLS && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		return fmt.Errorf("%s: no answer to the TLS handshake within %v", ep, probeTimeout)
	case overTLS && err != nil:
		return fmt.Errorf("%s: TLS handshake: %w", ep, err)
	case !overTLS && (err == nil || errors.As(err, &alert) || errors.As(err, &verify)):
		return fmt.Errorf("%s: %w: use https:// and, for a private CA or a client certificate, the tls option", ep, errTLS)
	}
	return nil
}

// plaintextHTTP reports whether the server at addr answers an HTTP request sent in the
// clear, as etcd's client port does (GET /version) when it has no TLS. A TLS server
// closes the connection at a ClientHello it cannot take (etcd), or answers with an
// error the TLS side of Go's HTTP server writes.
func plaintextHTTP(ctx context.Context, network, addr string) bool {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	if _, err := io.WriteString(conn, "GET /version HTTP/1.0\r\n\r\n"); err != nil {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(conn, 512))
	return bytes.HasPrefix(b, []byte("HTTP/")) && !bytes.Contains(b, []byte("HTTPS server"))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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
	for i, ep := range endpoints {
		go func() {
			errs[i] = probeEndpoint(ctx, ep, cfg)
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
