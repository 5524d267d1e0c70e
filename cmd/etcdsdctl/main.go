// Command etcdsdctl operates the SkyDNS records that etcdsd serves: it registers a
// service for as long as it runs, lists records as DNS answers them, checks a prefix for
// values etcdsd would skip, and removes records.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	golog "log"
	"os"
	"strings"
	"time"

	"github.com/etcdsd/etcdsd/register"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code: 0, 1 for an error or, for
// check, values that would be skipped.
func run(args []string, stdout, stderr io.Writer) int {
	// The plugin code ls reads with logs through the standard logger; a CLI keeps quiet.
	golog.SetOutput(io.Discard)
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.Execute(); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(stderr, "Error:", err)
		}
		return 1
	}
	return 0
}

// errReported is returned by commands that already told the user what is wrong.
var errReported = errors.New("reported")

// global holds the flags every command shares: where etcd is and how to reach it.
type global struct {
	endpoints      []string
	prefix         string
	cacert         string
	cert, key      string
	user, password string
	dialTimeout    time.Duration
	commandTimeout time.Duration
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
	if g.cacert != "" || g.cert != "" || g.key != "" {
		tc, err := transport.TLSInfo{CertFile: g.cert, KeyFile: g.key, TrustedCAFile: g.cacert}.ClientConfig()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
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
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), g.commandTimeout)
	defer cancel()
	return fn(ctx, cli)
}
