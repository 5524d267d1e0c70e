// Package devetcd runs a single-member etcd inside the calling process, on loopback, for
// the tests and for `make run`. It also loads record files into it.
package devetcd

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is a running embedded etcd.
type Server struct {
	*embed.Etcd
	Endpoint string // http://127.0.0.1:PORT, or https://
	tls      *TLSFiles
}

// Start starts etcd with its data in dir, serving clients on 127.0.0.1:clientPort (0 picks
// a free port). Reopening the same dir restarts the same member with its data.
func Start(dir string, clientPort int) (*Server, error) {
	return Member{Dir: dir, ClientPort: clientPort}.Start()
}

// StartTLS is Start with clients served over TLS, and required to show a certificate
// that the CA of tf signed.
func StartTLS(dir string, clientPort int, tf TLSFiles) (*Server, error) {
	return Member{Dir: dir, ClientPort: clientPort, TLS: &tf}.Start()
}

// Member is one etcd member on loopback.
type Member struct {
	Name       string // "dev" when empty
	Dir        string
	ClientPort int // 0 picks a free port
	PeerPort   int // 0 picks a free port
	// InitialCluster lists every member as NAME=http://127.0.0.1:PEERPORT, comma separated;
	// empty for a cluster of this member alone.
	InitialCluster string
	TLS            *TLSFiles
}

// Start starts the member and waits until it is ready to serve.
func (m Member) Start() (*Server, error) {
	clientPort, peerPort, tf := m.ClientPort, m.PeerPort, m.TLS
	for _, p := range []*int{&clientPort, &peerPort} {
		if *p == 0 {
			free, err := FreePort()
			if err != nil {
				return nil, err
			}
			*p = free
		}
	}
	cfg := embed.NewConfig()
	cfg.Name = cmp.Or(m.Name, "dev")
	cfg.Dir = m.Dir
	// Its own logs (including errors on a normal Close) would drown the tests' output.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // a development and test server: speed over durability
	curl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	if tf != nil {
		curl.Scheme = "https"
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile:       tf.ServerCert,
			KeyFile:        tf.ServerKey,
			TrustedCAFile:  tf.CA,
			ClientCertAuth: true,
		}
	}
	purl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{curl}, []url.URL{curl}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{purl}, []url.URL{purl}
	cfg.InitialCluster = cmp.Or(m.InitialCluster, cfg.InitialClusterFromName(cfg.Name))

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd in %s: %w", m.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd in %s stopped while starting: %w", m.Dir, err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd in %s not ready after 30s", m.Dir)
	}
	return &Server{Etcd: e, Endpoint: curl.String(), tls: tf}, nil
}

// RunTests runs m with an etcd in a temporary folder, for a package's TestMain. It sets
// *srv and *cli for the tests and returns the exit code.
func RunTests(m interface{ Run() int }, srv **Server, cli **clientv3.Client) int {
	dir, err := os.MkdirTemp("", "etcdsd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := Start(dir, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	c, err := s.Client()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	*srv, *cli = s, c
	return m.Run()
}

// Port returns the client port, to restart the same member on it.
func (s *Server) Port() int {
	u, _ := url.Parse(s.Endpoint)
	p, _ := strconv.Atoi(u.Port())
	return p
}

// Client returns a client of s that logs nothing, with the client certificate when s
// serves TLS.
func (s *Server) Client() (*clientv3.Client, error) { return s.ClientAs("", "") }

// ClientAs is Client for an etcd user.
func (s *Server) ClientAs(user, password string) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   []string{s.Endpoint},
		DialTimeout: 5 * time.Second,
		Username:    user,
		Password:    password,
		Logger:      zap.NewNop(),
	}
	if s.tls != nil {
		tc, err := transport.TLSInfo{CertFile: s.tls.ClientCert, KeyFile: s.tls.ClientKey, TrustedCAFile: s.tls.CA}.ClientConfig()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	return clientv3.New(cfg)
}

// Record is one line of a records file: an etcd key and its value.
type Record struct{ Key, Value string }

// ReadRecords reads a records file: one "KEY VALUE" per line, the value being the rest of
// the line. Blank lines and lines starting with # are skipped.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []Record
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, " ")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEY VALUE", path, line)
		}
		rs = append(rs, Record{Key: key, Value: strings.TrimSpace(value)})
	}
	return rs, sc.Err()
}

// LoadRecords puts the records of a file (ReadRecords) into etcd.
func LoadRecords(ctx context.Context, cli *clientv3.Client, path string) (int, error) {
	rs, err := ReadRecords(path)
	if err != nil {
		return 0, err
	}
	for i, r := range rs {
		if _, err := cli.Put(ctx, r.Key, r.Value); err != nil {
			return i, fmt.Errorf("%s: %s: %w", path, r.Key, err)
		}
	}
	return len(rs), nil
}

// StartFor starts an etcd of tb's own in a temporary folder, for a test that stops it and
// starts it again from dir (Start(dir, srv.Port())); closing the server is the test's.
// The client is closed when tb ends.
func StartFor(tb interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Fatal(args ...any)
}) (dir string, srv *Server, cli *clientv3.Client) {
	tb.Helper()
	dir = tb.TempDir()
	srv, err := Start(dir, 0)
	if err != nil {
		tb.Fatal(err)
	}
	cli, err = srv.Client()
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cli.Close() })
	return dir, srv, cli
}

// FreePortFor is FreePort for tests: it fails tb when there is none.
func FreePortFor(tb interface {
	Helper()
	Fatal(args ...any)
}) int {
	tb.Helper()
	p, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// handedOut holds the ports FreePort returned: the kernel may pick a port again once it is
// closed, and among the 150 ports of 50 CoreDNS replicas a repeat is likely.
var handedOut sync.Map

// FreePort returns a loopback port that is free for both TCP and UDP, as a DNS server
// needs, for tests and tools that start servers; never the same one twice in a process.
func FreePort() (int, error) {
	for range 100 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		return port, nil
	}
	return 0, errors.New("no free port on 127.0.0.1")
}
