// Command etcdsdctl operates the SkyDNS records that etcdsd serves: it registers a
// service for as long as it runs, lists records as DNS answers them, checks a prefix for
// values etcdsd would skip, and removes records.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	golog "log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/etcdsd/etcdsd/register"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code: 0, or 1 for an error; check,
// as grep and diff do, exits 1 for what it finds (values that would be skipped, keys that
// are no DNS name) and 2 for trouble: keys it could not read, or any other error.
func run(args []string, stdout, stderr io.Writer) int {
	// The plugin code ls reads with logs through the standard logger; a CLI keeps quiet.
	golog.SetOutput(io.Discard)
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	ran, err := cmd.ExecuteC() // the command that ran, also when its flags or arguments are wrong
	if err == nil {
		return 0
	}
	if !errors.Is(err, errReported) {
		fmt.Fprintln(stderr, "Error:", err)
	}
	if ran != nil && ran.Name() == "check" && !errors.Is(err, errFound) {
		return 2
	}
	return 1
}

// errReported is returned by commands that already told the user what is wrong.
var errReported = errors.New("reported")

// errFound is check's error when it read every key asked for and printed values that
// would be skipped or keys that are no DNS name: exit 1, where its other errors exit 2.
var errFound = fmt.Errorf("found: %w", errReported)

// global holds the flags every command shares: where etcd is and how to reach it.
type global struct {
	endpoints      []string
	prefix         string
	cacert         string
	cert, key      string
	user, password string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	tls            *tls.Config // built from the files, for the probes of explain
}

func newRootCmd() *cobra.Command {
	g := &global{}
	root := &cobra.Command{
		Use:   "etcdsdctl",
		Short: "Operate the SkyDNS records in etcd that etcdsd serves",
		Long: `etcdsdctl registers services in etcd for as long as they run, lists records as
DNS answers them, checks a prefix for values etcdsd would skip, and removes records.
Names are DNS names; keys are derived from them under --path, as etcdsd reads them.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringSliceVar(&g.endpoints, "endpoints", []string{"127.0.0.1:2379"}, "etcd endpoints, comma-separated")
	f.StringVar(&g.prefix, "path", register.DefaultPrefix, "etcd path the records live under (the plugin's path option)")
	f.StringVar(&g.cacert, "cacert", "", "CA bundle to verify etcd's certificate")
	f.StringVar(&g.cert, "cert", "", "client certificate for TLS")
	f.StringVar(&g.key, "key", "", "client key for TLS")
	f.StringVar(&g.user, "user", "", "etcd user, as NAME or NAME:PASSWORD")
	f.StringVar(&g.password, "password", "", "etcd password, if --user does not hold it")
	f.DurationVar(&g.dialTimeout, "dial-timeout", 5*time.Second, "time to connect to etcd")
	f.DurationVar(&g.commandTimeout, "command-timeout", 10*time.Second, "time for one command's etcd requests")
	root.AddCommand(newRegisterCmd(g), newLsCmd(g), newCheckCmd(g), newRmCmd(g))
	return root
}

// client connects to etcd as the flags say.
func (g *global) client() (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   g.endpoints,
		DialTimeout: g.dialTimeout,
		Username:    g.user,
		Password:    g.password,
		Logger:      zap.NewNop(),
	}
	if name, pass, ok := strings.Cut(g.user, ":"); ok {
		cfg.Username, cfg.Password = name, pass
	}
	if (g.cert == "") != (g.key == "") {
		return nil, fmt.Errorf("--cert and --key go together: give both or neither")
	}
	if g.cacert != "" || g.cert != "" || g.key != "" {
		tc, err := transport.TLSInfo{CertFile: g.cert, KeyFile: g.key, TrustedCAFile: g.cacert}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("reading the TLS files (--cacert, --cert, --key): %w", err)
		}
		cfg.TLS, g.tls = tc, tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", strings.Join(g.endpoints, ","), err)
	}
	return cli, nil
}

// withClient runs fn with a client and a context bounded by --command-timeout.
func (g *global) withClient(fn func(ctx context.Context, cli *clientv3.Client) error) error {
	cli, err := g.client()
	if err != nil {
		return g.explain(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), g.commandTimeout)
	defer cancel()
	return g.explain(fn(ctx, cli))
}

// explain adds to an error from etcd what lets the user act on it: for a request that
// etcd did not answer in time, what each endpoint does with a connection. A refused range
// is explained where it is read, with what the user may read instead.
func (g *global) explain(err error) error {
	if err == nil || errors.Is(err, errReported) {
		return err
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable:
	default:
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	var notes []string
	for _, ep := range g.endpoints {
		if note := g.probe(ep); note != "" {
			notes = append(notes, note)
		}
	}
	if len(notes) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s", err, strings.Join(notes, "; "))
}

// probe says what the endpoint ep does with a connection, as the client makes it: refuses
// it, fails the TLS handshake (a certificate it wants, or one that does not verify), or
// speaks TLS to a client without --cacert; "" when it takes one and etcdsdctl cannot tell
// more.
func (g *global) probe(ep string) string {
	host := ep
	if scheme, rest, ok := strings.Cut(ep, "://"); ok {
		if scheme == "unix" || scheme == "unixs" {
			return ""
		}
		host, _, _ = strings.Cut(rest, "/")
	}
	d := &net.Dialer{Timeout: time.Second}
	c, err := d.Dial("tcp", host)
	if err != nil {
		return "etcd is not reachable: " + err.Error()
	}
	c.Close()
	cfg := g.tls
	if cfg == nil {
		cfg = &tls.Config{InsecureSkipVerify: true} // #nosec G402 -- only to tell whether the endpoint speaks TLS
	}
	tc, herr := tls.DialWithDialer(d, "tcp", host, cfg)
	var rerr error
	if herr == nil {
		// TLS 1.3 refuses a missing client certificate after the handshake: on the first read.
		tc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, rerr = tc.Read(make([]byte, 1))
		tc.Close()
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() {
			rerr = nil
		}
	}
	switch {
	case g.tls == nil && herr == nil:
		return host + " speaks TLS: give --cacert (and --cert and --key if it wants a client certificate)"
	case g.tls != nil && herr != nil:
		return "the TLS handshake with " + host + " fails: " + herr.Error()
	case g.tls != nil && rerr != nil:
		return "the TLS handshake with " + host + " fails: " + rerr.Error()
	}
	return host + " takes connections, but etcd did not answer in time"
}

// plural returns n with the noun, in the plural unless n is 1: "1 key", "2 keys".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// isAre is n with the verb for n things: "1 is", "2 are".
func isAre(n int) string { return fmt.Sprintf("%d %s", n, verb(n)) }

// verb is "is" for one thing, else "are".
func verb(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
