// Package devetcd runs etcd on loopback for the tests, the benchmarks and `make run`: a
// single member (Start) or a cluster (StartCluster) of separate processes, of the current
// release (CurrentBinary) or of any etcd binary. It also loads record files into it.
package devetcd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Server is a running single-member etcd of the current release.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT, or https://
	tls      *TLSFiles
	proc     *process
}

// Start starts etcd with its data in dir, serving clients on 127.0.0.1:clientPort (0 picks
// a free port). Reopening the same dir restarts the same member with its data.
func Start(dir string, clientPort int) (*Server, error) { return start(dir, clientPort, nil) }

// StartTLS is Start with clients served over TLS, and required to show a certificate
// that the CA of tf signed.
func StartTLS(dir string, clientPort int, tf TLSFiles) (*Server, error) {
	return start(dir, clientPort, &tf)
}

func start(dir string, clientPort int, tf *TLSFiles) (*Server, error) {
	bin, err := current()
	if err != nil {
		return nil, err
	}
	peerPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	if clientPort == 0 {
		if clientPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	// A server already on the port would answer the status check below while this one
	// exits, and get what the caller writes.
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", clientPort))
	if err != nil {
		return nil, fmt.Errorf("etcd's client port %d is taken: %w", clientPort, err)
	}
	l.Close()
	curl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	args := []string{
		"--name", "dev", "--data-dir", dir,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "dev=" + peer,
		"--unsafe-no-fsync", // a development and test server: speed over durability
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "error",
	}
	if tf != nil {
		curl.Scheme = "https"
		args = append(args, "--cert-file", tf.ServerCert, "--key-file", tf.ServerKey,
			"--trusted-ca-file", tf.CA, "--client-cert-auth")
	}
	args = append(args, "--listen-client-urls", curl.String(), "--advertise-client-urls", curl.String())
	p, err := startProcess(bin, args...)
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: curl.String(), tls: tf, proc: p}
	cli, err := s.Client()
	if err != nil {
		s.Close()
		return nil, err
	}
	defer cli.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("etcd in %s exited while starting (%v): %s", dir, p.err, &p.logs)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		st, err := cli.Status(ctx, s.Endpoint)
		cancel()
		if err == nil && st.Leader != 0 {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("etcd in %s not ready after 30s: %s", dir, &p.logs)
		}
	}
}

// Pid returns the member's process id.
func (s *Server) Pid() int { return s.proc.cmd.Process.Pid }

// Close stops the member and waits until it has exited.
func (s *Server) Close() {
	s.proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.proc.exited:
	case <-time.After(10 * time.Second):
		s.proc.cmd.Process.Kill()
		<-s.proc.exited
	}
}

// current returns the current release's etcd binary (CurrentBinary), built once per
// process when $ETCDSD_ETCD does not name one.
var current = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("ETCDSD_ETCD"); bin != "" {
		return bin, nil // no folder to build in
	}
	dir, err := os.MkdirTemp("", "etcdsd-etcd-")
	if err != nil {
		return "", err
	}
	return CurrentBinary(dir)
})

// CurrentBinary returns $ETCDSD_ETCD, or builds the etcd server of the release etcdsd is
// built against (the module test/tools pins it) into dir.
func CurrentBinary(dir string) (string, error) {
	if bin := os.Getenv("ETCDSD_ETCD"); bin != "" {
		return bin, nil
	}
	_, self, _, _ := runtime.Caller(0)
	module := filepath.Join(filepath.Dir(self), "..", "..", "test", "tools")
	bin := filepath.Join(dir, "etcd")
	cmd := exec.Command("go", "build", "-o", bin, "go.etcd.io/etcd/server/v3")
	cmd.Dir = module
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building etcd in %s: %w\n%s", module, err, out)
	}
	return bin, nil
}

// Shared is one etcd for every test of a package, started when a test first asks for it
// (a package's tests that need no etcd, such as Corefile parsing, run without one) and
// stopped by RunTests.
type Shared struct {
	once sync.Once
	dir  string
	srv  *Server
	cli  *clientv3.Client
	err  error
}

func (s *Shared) start() {
	s.once.Do(func() {
		if s.dir, s.err = os.MkdirTemp("", "etcdsd-test-"); s.err != nil {
			return
		}
		if s.srv, s.err = Start(s.dir, 0); s.err != nil {
			return
		}
		s.cli, s.err = s.srv.Client()
	})
	if s.err != nil {
		panic(fmt.Sprintf("the tests' etcd: %v", s.err)) // no test that needs etcd can run
	}
}

// Server returns the shared etcd, started on the first call; it panics when etcd cannot
// start.
func (s *Shared) Server() *Server { s.start(); return s.srv }

// Client returns a client of the shared etcd (Server), shared by the tests too.
func (s *Shared) Client() *clientv3.Client { s.start(); return s.cli }

func (s *Shared) close() {
	if s.cli != nil {
		s.cli.Close()
	}
	if s.srv != nil {
		s.srv.Close()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// RunTests runs m, for a package's TestMain, and then stops shared's etcd if a test
// started it. It returns the exit code.
func RunTests(m interface{ Run() int }, shared *Shared) int {
	defer shared.close()
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

// Reader is an etcd user whose role, named as the user, may read Ranges: [key, end) each,
// an empty end for the key alone.
type Reader struct {
	User, Password string
	Ranges         [][2]string
}

// PrefixRange is the range of the keys that start with prefix, as etcdctl
// role grant-permission --prefix grants it.
func PrefixRange(prefix string) [2]string {
	return [2]string{prefix, clientv3.GetPrefixRangeEnd(prefix)}
}

// EnableAuth adds the user root with rootPassword and the role root (etcd 3.4 wants both),
// adds readers, and turns auth on: admin, a client without credentials, can do nothing
// more.
func EnableAuth(ctx context.Context, admin *clientv3.Client, rootPassword string, readers ...Reader) error {
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", rootPassword); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
	}
	for _, r := range readers {
		steps = append(steps,
			func() error { _, err := admin.RoleAdd(ctx, r.User); return err },
			func() error { _, err := admin.UserAdd(ctx, r.User, r.Password); return err },
			func() error { _, err := admin.UserGrantRole(ctx, r.User, r.User); return err })
		for _, kr := range r.Ranges {
			steps = append(steps, func() error {
				_, err := admin.RoleGrantPermission(ctx, r.User, kr[0], kr[1], clientv3.PermissionType(clientv3.PermRead))
				return err
			})
		}
	}
	steps = append(steps, func() error { _, err := admin.AuthEnable(ctx); return err })
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// MaxTxnOps is the most operations etcd takes in one transaction (its --max-txn-ops
// default).
const MaxTxnOps = 128

// Commit applies ops in order, MaxTxnOps to a transaction: many writes at few revisions,
// as a deploy script writes them.
func Commit(ctx context.Context, cli *clientv3.Client, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), MaxTxnOps)
		if _, err := cli.Txn(ctx).Then(ops[:n]...).Commit(); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
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
// It is below the kernel's range of ephemeral ports (ip_local_port_range): a port from
// that range, free when picked, can become the local port of any outgoing connection
// before its server binds it (the harness's relays to etcd, a replica's client), and a
// server that meets it there fails to start (cmd/replicas's replicas not ready after a
// mass restart).
func FreePort() (int, error) {
	low, _ := EphemeralPorts()
	for range 1000 {
		port := 1024 + rand.IntN(low-1024)
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
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

// EphemeralPorts returns the range the kernel picks the local ports of outgoing
// connections from (Linux's net.ipv4.ip_local_port_range), or its default, 32768..60999.
func EphemeralPorts() (low, high int) {
	low, high = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, high
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		l, err1 := strconv.Atoi(f[0])
		h, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && l > 2048 {
			return l, h
		}
	}
	return low, high
}
