package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/request"
	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/register"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// lsTypes are the query types ls asks for: those a SkyDNS value can answer.
var lsTypes = []uint16{dns.TypeSRV, dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeMX, dns.TypePTR}

func newLsCmd(g *global) *cobra.Command {
	var zone string
	cmd := &cobra.Command{
		Use:   "ls NAME",
		Short: "Show what etcdsd answers for NAME, from the records in etcd",
		Long: `ls reads the zone's keys once and prints what etcdsd answers a query for NAME of each
type that has an answer (SRV, A, AAAA, CNAME, TXT, MX, PTR), with its additional section,
as dig shows them; values under NAME that etcdsd skips are listed after. --zone should be
the zone of the Corefile's etcdsd stanza (a name, or a CIDR for a reverse zone): it decides
apex answers and which names are looked up in the data. A name outside the zone, such as a
CNAME's target, is not looked up: the CNAME shows without the target's records. The
default zone, the root, reads every key under --path.`,
		Example: `  etcdsdctl ls _web._tcp.example.local --zone example.local`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := dns.Fqdn(args[0])
			zone, err := zoneOf(zone, name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			answered := false
			err = g.withClient(func(ctx context.Context, cli *clientv3.Client) error {
				var err error
				if answered, err = preview(ctx, cli, g.prefix, zone, name, out); err != nil {
					return err
				}
				// Values etcdsd skips answer nothing: say which, so an empty answer is explained.
				key, err := skydns.Key(g.prefix, name)
				if err != nil {
					return nil // a wildcard name: no one key to look below
				}
				err = scan(ctx, cli, key, func(kv *mvccpb.KeyValue, err error) {
					if err == nil {
						return
					}
					if line, skipped := describe(kv, err); skipped {
						fmt.Fprintln(cmd.ErrOrStderr(), "skipped "+line)
					} else {
						fmt.Fprintln(cmd.ErrOrStderr(), line)
					}
				})
				if err != nil {
					return err
				}
				return showHealth(ctx, cli, key, out)
			})
			if err != nil {
				return err
			}
			if !answered {
				fmt.Fprintf(cmd.ErrOrStderr(), "no records for %s\n", name)
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&zone, "zone", ".", "the zone etcdsd serves NAME in")
	return cmd
}

// zoneOf returns the zone, normalized as the Corefile's are (a CIDR becomes its reverse
// zones), that holds name.
func zoneOf(zone, name string) (string, error) {
	for _, z := range plugin.Host(zone).NormalizeExact() {
		if dns.IsSubDomain(z, strings.ToLower(name)) {
			return z, nil
		}
	}
	return "", fmt.Errorf("%s is not in zone %s", name, zone)
}

// preview prints what etcdsd answers for name in zone, type by type, from one read of
// the zone's keys, with the plugin's default options, and reports whether any type had an
// answer.
func preview(ctx context.Context, cli *clientv3.Client, prefix, zone, name string, out io.Writer) (answered bool, err error) {
	o := &index.Options{PathPrefix: prefix, Now: time.Now, Upstream: unresolved{}}
	snap, err := index.Read(ctx, cli, o, zone)
	if err != nil {
		return false, err
	}
	for _, qt := range lsTypes {
		m := new(dns.Msg).SetQuestion(name, qt)
		a, err := snap.Build(ctx, o, zone, request.Request{Req: m})
		if err != nil {
			fmt.Fprintf(out, ";; %s %s: SERVFAIL (%v)\n", dns.TypeToString[qt], name, err)
			continue
		}
		resp := a.Msg(m, snap)
		// A cut answer is shown even when the keys read held no record of the type.
		if len(resp.Answer) == 0 && !resp.Truncated {
			continue
		}
		answered = true
		fmt.Fprintf(out, ";; %s %s\n", dns.TypeToString[qt], name)
		if resp.Truncated {
			fmt.Fprintf(out, ";; truncated (TC): more than %d keys under the name; the answer is from the first\n", index.DefaultMaxAnswers)
		}
		for _, rr := range resp.Answer {
			fmt.Fprintln(out, rr)
		}
		for _, rr := range resp.Extra {
			fmt.Fprintln(out, rr, " ; additional")
		}
	}
	return answered, nil
}

// unresolved stands in for CoreDNS's upstream, which ls has not: every name outside the
// zone resolves to nothing, so that a CNAME to one shows, as etcdsd answers it, without
// the target's records.
type unresolved struct{}

func (unresolved) Lookup(_ context.Context, _ request.Request, name string, typ uint16) (*dns.Msg, error) {
	return new(dns.Msg).SetQuestion(name, typ), nil
}

// showHealth prints the check states of the registrations at key and below it.
func showHealth(ctx context.Context, cli *clientv3.Client, key string, out io.Writer) error {
	at := register.HealthKey(key)
	below := index.Below(at)
	for _, get := range []func() (*clientv3.GetResponse, error){
		func() (*clientv3.GetResponse, error) { return cli.Get(ctx, at) },
		func() (*clientv3.GetResponse, error) { return cli.Get(ctx, below.Start, clientv3.WithRange(below.End)) },
	} {
		resp, err := get()
		if errors.Is(err, rpctypes.ErrPermissionDenied) {
			// A role that reads records only: there are no check states to show.
			fmt.Fprintf(out, ";; check states not shown: %s is not readable (%v)\n", register.HealthPrefix, err)
			return nil
		}
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			var h register.Health
			if err := json.Unmarshal(kv.Value, &h); err != nil {
				return fmt.Errorf("check state at %s: %w", skydns.Quote(string(kv.Key)), err)
			}
			fmt.Fprintf(out, ";; %s: %s\n", skydns.Quote(strings.TrimPrefix(string(kv.Key), register.HealthPrefix)), &h)
		}
	}
	return nil
}
