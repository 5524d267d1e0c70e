package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/register"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func newRegisterCmd(g *global) *cobra.Command {
	var (
		svc                       skydns.Service
		ttl                       time.Duration
		checkHTTP, checkTCP, exec string
		opt                       register.Options
	)
	cmd := &cobra.Command{
		Use:   "register NAME --host HOST [flags]",
		Short: "Keep a service's record in etcd while this command runs",
		Long: `register puts the record of NAME under an etcd lease and keeps the lease alive until
it is stopped. On SIGINT or SIGTERM it revokes the lease, so the record leaves DNS at once;
if it is killed or its machine dies, etcd deletes the record when the lease's TTL runs out.
If etcd is away for longer than the TTL, the record is put again when etcd is back.

With a check (--check-http, --check-tcp or --check-exec), the record is put once the check
passes, withdrawn after --check-failures failures in a row (the lease is kept) and put back
when it passes again; etcdsdctl ls shows the check's state.`,
		Example: `  etcdsdctl register web-server04._web._tcp.example.local --host 1.1.1.4 --port 80
  etcdsdctl register web-server04._web._tcp.example.local --host 1.1.1.4 --port 80 \\
      --check-http http://1.1.1.4/healthz --check-interval 5s`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if svc.Host == "" && svc.Text == "" {
				return fmt.Errorf("register needs --host or --text")
			}
			if err := checkFlags(cmd, ttl, checkHTTP, checkTCP, exec); err != nil {
				return err
			}
			switch {
			case checkHTTP != "" && checkTCP == "" && exec == "":
				opt.Check = register.HTTPCheck(checkHTTP)
			case checkTCP != "" && checkHTTP == "" && exec == "":
				opt.Check = register.TCPCheck(checkTCP)
			case exec != "" && checkHTTP == "" && checkTCP == "":
				opt.Check = register.ExecCheck(exec)
			case checkHTTP != "" || checkTCP != "" || exec != "":
				return fmt.Errorf("register takes one of --check-http, --check-tcp and --check-exec")
			}
			if opt.CheckInterval <= 0 || opt.CheckTimeout <= 0 || opt.CheckFailures <= 0 {
				return fmt.Errorf("--check-interval, --check-timeout and --check-failures must be positive")
			}
			cli, err := g.client()
			if err != nil {
				return g.explain(err)
			}
			defer cli.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()

			opt.Prefix, opt.TTL = g.prefix, ttl
			opt.OnError = func(err error) { fmt.Fprintln(cmd.ErrOrStderr(), "etcdsdctl:", err) }
			opt.OnHealth = func(passing bool, err error) {
				if passing {
					fmt.Fprintf(cmd.OutOrStdout(), "check passing: %s is back\n", args[0])
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "check failing, %s withdrawn: %v\n", args[0], err)
				}
			}
			r, err := register.Register(ctx, cli, args[0], svc, opt)
			if err != nil && ctx.Err() != nil {
				return nil // stopped before anything was registered, as asked
			}
			if errors.Is(err, rpctypes.ErrPermissionDenied) {
				need := []interval{}
				if key, kerr := skydns.Key(g.prefix, args[0]); kerr == nil {
					need = append(need, spanInterval(index.Span{Start: key}))
					if opt.Check != nil {
						need = append(need, spanInterval(index.Span{Start: register.HealthKey(key)}))
					}
				}
				rctx, cancel := context.WithTimeout(context.Background(), g.commandTimeout)
				defer cancel()
				return refusal(rctx, cli, g.userName(), "write", need, err)
			}
			if err != nil {
				return g.explain(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered %s at %s under lease %x (ttl %v); stop with Ctrl-C\n",
				args[0], r.Key(), int64(r.Lease()), r.TTL())
			if h := r.Health(); h != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], h)
			}
			<-ctx.Done()
			if err := r.Close(); err != nil {
				return fmt.Errorf("revoking the lease of %s: %w (etcd deletes it when the lease runs out)", r.Key(), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", r.Key())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&svc.Host, "host", "", "IP address or host name the record points at")
	f.IntVar(&svc.Port, "port", 0, "port for SRV records")
	f.IntVar(&svc.Priority, "priority", 0, "SRV/MX priority (etcdsd answers 10 for 0)")
	f.IntVar(&svc.Weight, "weight", 0, "SRV weight")
	f.StringVar(&svc.Text, "text", "", "text for TXT records")
	f.Uint32Var(&svc.TTL, "ttl", 0, "record TTL in seconds (default: the lease's)")
	f.StringVar(&svc.Group, "group", "", "SkyDNS group")
	f.IntVar(&svc.TargetStrip, "targetstrip", 0, "labels to strip from the SRV target")
	f.DurationVar(&ttl, "lease", register.DefaultTTL, "lease TTL: how long the record outlives a killed process")
	f.StringVar(&checkHTTP, "check-http", "", "health check: GET this URL; 2xx and 3xx pass")
	f.StringVar(&checkTCP, "check-tcp", "", "health check: open a TCP connection to this HOST:PORT")
	f.StringVar(&exec, "check-exec", "", "health check: run this shell command; exit 0 passes")
	f.DurationVar(&opt.CheckInterval, "check-interval", register.DefaultCheckInterval, "time between two runs of the check")
	f.DurationVar(&opt.CheckTimeout, "check-timeout", register.DefaultCheckTimeout, "time one run of the check may take")
	f.IntVar(&opt.CheckFailures, "check-failures", register.DefaultCheckFailures, "failures in a row that withdraw the record")
	return cmd
}

// checkFlags refuses what would register a record that never shows or a check that cannot
// work, before anything is written.
func checkFlags(cmd *cobra.Command, lease time.Duration, checkHTTP, checkTCP, exec string) error {
	f := cmd.Flags()
	if lease <= 0 {
		return fmt.Errorf("--lease must be positive, not %v", lease)
	}
	if f.Changed("check-exec") && strings.TrimSpace(exec) == "" {
		return fmt.Errorf("--check-exec needs a command")
	}
	if checkTCP != "" {
		if host, port, err := net.SplitHostPort(checkTCP); err != nil || host == "" || port == "" {
			return fmt.Errorf("--check-tcp %q: want HOST:PORT", checkTCP)
		}
	}
	if checkHTTP != "" {
		if u, err := url.Parse(checkHTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--check-http %q: want an http:// or https:// URL", checkHTTP)
		}
	}
	if checkHTTP == "" && checkTCP == "" && exec == "" {
		for _, name := range []string{"check-interval", "check-timeout", "check-failures"} {
			if f.Changed(name) {
				return fmt.Errorf("--%s needs a check: --check-http, --check-tcp or --check-exec", name)
			}
		}
	}
	return nil
}
