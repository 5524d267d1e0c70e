package main

import (
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/etcdsd/etcdsd/register"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/spf13/cobra"
)

func newRegisterCmd(g *global) *cobra.Command {
	var (
		svc skydns.Service
		ttl time.Duration
	)
	cmd := &cobra.Command{
		Use:   "register NAME --host HOST [flags]",
		Short: "Keep a service's record in etcd while this command runs",
		Long: `register puts the record of NAME under an etcd lease and keeps the lease alive until
it is stopped. On SIGINT or SIGTERM it revokes the lease, so the record leaves DNS at once;
if it is killed or its machine dies, etcd deletes the record when the lease's TTL runs out.
If etcd is away for longer than the TTL, the record is put again when etcd is back.`,
		Example: `  etcdsdctl register web-server04._web._tcp.example.local --host 1.1.1.4 --port 80`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if svc.Host == "" && svc.Text == "" {
				return fmt.Errorf("register needs --host or --text")
			}
			cli, err := g.client()
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()

			r, err := register.Register(ctx, cli, args[0], svc, register.Options{
				Prefix:  g.prefix,
				TTL:     ttl,
				OnError: func(err error) { fmt.Fprintln(cmd.ErrOrStderr(), "etcdsdctl:", err) },
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered %s at %s under lease %x (ttl %v); stop with Ctrl-C\n",
				args[0], r.Key(), int64(r.Lease()), ttl)
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
	return cmd
}
