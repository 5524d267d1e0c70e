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
	"github.com/coredns/coredns/plugin/etcd/msg"
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
default zone, the root, reads every key under --path; where etcd refuses the user that,
ls previews NAME in the widest zone above it whose keys the user may read, and says so.
ls also reads and shows the check states of the registrations at and below NAME, which
register keeps under /etcdsd/health; where the user may not read them, it says so in one
line.`,
		Example: `  etcdsdctl ls _web._tcp.example.local --zone example.local`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.HasPrefix(args[0], "/") {
				return fmt.Errorf("ls takes a DNS name, not a key (%s): it shows the answers to queries for the name", skydns.Quote(args[0]))
			}
			name := dns.Fqdn(args[0])
			zone, err := zoneOf(zone, name)
			if err != nil {
				return err
			}
			zones := []string{zone}
			if !cmd.Flags().Changed("zone") {
				zones = append(zones, narrower(zone, name)...)
			}
			out := cmd.OutOrStdout()
			answered := false
			found := ""
			err = g.withClient(func(ctx context.Context, cli *clientv3.Client) error {
				user := g.userName()
				o := &index.Options{PathPrefix: g.prefix, Now: time.Now, Upstream: unresolved{}}
				snap, zone, err := readZone(ctx, cli, user, o, zones, out)
				if err != nil && errors.Is(err, rpctypes.ErrPermissionDenied) && cmd.Flags().Changed("zone") && len(narrower(zones[0], name)) > 0 {
					return fmt.Errorf("%w; without --zone, ls previews the name in the widest zone above it that the user may read", err)
				}
				if err != nil {
					return err
				}
				answered = preview(ctx, snap, o, zone, name, out)
				// Values etcdsd skips answer nothing: say which, so an empty answer is explained.
				t, err := parseTarget(g.prefix, name)
				if err != nil {
					return nil // a wildcard name: no one key to look below
				}
				keys, err := t.keys(ctx, cli, user, index.RootKey(g.prefix))
				if err != nil {
					return err
				}
				counted := tally{out: cmd.ErrOrStderr(), skippedPrefix: "skipped "}
				cov, err := scan(ctx, cli, user, keys, counted.add)
				if err != nil {
					return err
				}
				if cov.partial() {
					fmt.Fprintln(out, ";; "+cov.note())
				}
				if counted.n == 0 {
					found = fmt.Sprintf("no key at or below %s", quoteKeys(keys))
				} else {
					found = fmt.Sprintf("%s at or below %s, of which %d would be skipped and %s no DNS name",
						plural(counted.n, "key"), quoteKeys(keys), counted.bad, isAre(counted.unnamed))
				}
				if cov.partial() {
					found += " (of the keys read: see \"not read\")"
				}
				return showHealth(ctx, cli, user, keys, out)
			})
			if err != nil {
				return err
			}
			if !answered {
				if found != "" {
					found = ": " + found
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "no records for %s%s\n", name, found)
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&zone, "zone", ".", "the zone etcdsd serves NAME in")
	return cmd
}

// narrower returns the names between zone (left out) and name, widest first, up to a
// wildcard label: the zones ls may preview name in when etcd refuses the user zone's
// keys.
func narrower(zone, name string) []string {
	labels := dns.SplitDomainName(strings.ToLower(name))
	var zones []string
	for i := len(labels) - dns.CountLabel(zone) - 1; i >= 0; i-- {
		if labels[i] == "*" || labels[i] == "any" {
			break
		}
		zones = append(zones, dns.Fqdn(strings.Join(labels[i:], ".")))
	}
	return zones
}

// readZone reads the keys of the first of zones whose keys etcd lets the user read, as
// etcdsd reads a zone, and says on out which zone that is when it is not the first.
func readZone(ctx context.Context, cli *clientv3.Client, user string, o *index.Options, zones []string, out io.Writer) (*index.Snapshot, string, error) {
	var refused error
	for i, z := range zones {
		snap, err := index.Read(ctx, cli, o, z)
		if err == nil {
			if i > 0 {
				fmt.Fprintf(out, ";; zone %s: the widest at or above %s whose keys %s may read (%v); names outside it are not looked up in the data\n",
					z, zones[len(zones)-1], whoIs(user), refused)
			}
			return snap, z, nil
		}
		if !errors.Is(err, rpctypes.ErrPermissionDenied) {
			return nil, "", err
		}
		refused = err
	}
	z := zones[len(zones)-1]
	below := index.Below(index.RootKey(msg.Path(z, o.PathPrefix)))
	err := refusal(ctx, cli, user, "read", []interval{spanInterval(below)}, rpctypes.ErrPermissionDenied)
	if len(zones) > 1 {
		return nil, "", fmt.Errorf("reading the keys of %s or of any zone above it: %w", z, err)
	}
	return nil, "", fmt.Errorf("reading the keys of zone %s: %w", z, err)
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

// preview prints what etcdsd answers for name in zone, type by type, from snap, the
// zone's keys read with o (the plugin's default options), and reports whether any type
// had an answer.
func preview(ctx context.Context, snap *index.Snapshot, o *index.Options, zone, name string, out io.Writer) (answered bool) {
	for _, qt := range index.Types() {
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
	return answered
}

// unresolved stands in for CoreDNS's upstream, which ls has not: every name outside the
// zone resolves to nothing, so that a CNAME to one shows, as etcdsd answers it, without
// the target's records.
type unresolved struct{}

func (unresolved) Lookup(_ context.Context, _ request.Request, name string, typ uint16) (*dns.Msg, error) {
	return new(dns.Msg).SetQuestion(name, typ), nil
}

// showHealth prints the check states of the registrations at keys (the spellings of a
// name) and below them, kept under register.HealthPrefix. Where etcd refuses the user
// some of them, it reads the parts the user's roles grant and says which it could not
// read; a role that grants none of them, one that reads records only, gets one line.
func showHealth(ctx context.Context, cli *clientv3.Client, user string, keys []string, out io.Writer) error {
	at := make([]string, len(keys))
	for i, key := range keys {
		at[i] = register.HealthKey(key)
	}
	var bad error
	cov, err := readZones(ctx, cli, user, at, func(kv *mvccpb.KeyValue) {
		var h register.Health
		if err := json.Unmarshal(kv.Value, &h); err != nil {
			if bad == nil {
				bad = fmt.Errorf("check state at %s: %w", skydns.Quote(string(kv.Key)), err)
			}
			return
		}
		fmt.Fprintf(out, ";; %s: %s\n", skydns.Quote(strings.TrimPrefix(string(kv.Key), register.HealthPrefix)), &h)
	})
	if err != nil {
		return fmt.Errorf("reading the check states at %s: %w", quoteKeys(at), err)
	}
	if bad != nil {
		return bad
	}
	switch {
	case cov.none() && cov.acc != nil:
		fmt.Fprintf(out, ";; check states not shown: %s may not read them (at or below %s)\n", cov.acc.who(), quoteKeys(at))
	case cov.none():
		fmt.Fprintf(out, ";; check states not shown: etcd refused reading them (at or below %s): %s\n", quoteKeys(at), cov.why())
	case cov.partial():
		fmt.Fprintln(out, ";; check states "+cov.note())
	}
	return nil
}
