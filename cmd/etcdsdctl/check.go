package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newCheckCmd(g *global) *cobra.Command {
	return &cobra.Command{
		Use:   "check [NAME | KEY]",
		Short: "Report every value under --path (or NAME, or KEY) that etcdsd would skip",
		Long: `check reads every key under --path, or only NAME's records and the records below them
(NAME's key in any case of its letters, as etcdsd finds them), or a KEY under --path as it is
and the keys below it, and prints each value etcdsd would skip, with the reason its
skipped_values_total metric gives, and each key that is no DNS name (its records answer only
for the names above it). Where nothing is at or below NAME or KEY, it says so and exits 0.

Where etcd refuses the user some of those keys, check reads the parts the user's roles grant,
prints what it finds there, and names the ranges it could not read ("not read: ...").

Exit status, as grep's and diff's: 0 when it read every key asked for and found neither;
1 when it read every key asked for and printed values that would be skipped or keys that
are no DNS name; 2 for trouble: some or all of the keys could not be read (a range etcd
refused, etcd not answering) or the arguments are wrong, whatever it printed of the keys
it did read.`,
		Example: `  etcdsdctl check
  etcdsdctl check example.local
  etcdsdctl check /skydns/local/example/a//empty`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := index.RootKey(g.prefix)
			t := target{key: root}
			if len(args) == 1 {
				var err error
				if t, err = parseTarget(g.prefix, args[0]); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			var (
				keys    []string
				cov     *coverage
				counted = tally{out: out}
			)
			err := g.withClient(func(ctx context.Context, cli *clientv3.Client) error {
				var err error
				if keys, err = t.keys(ctx, cli, g.userName(), root); err != nil {
					return err
				}
				cov, err = scan(ctx, cli, g.userName(), keys, counted.add)
				return err
			})
			if err != nil {
				return err
			}
			under := quoteKeys(keys)
			if cov.none() {
				return fmt.Errorf("nothing under %s could be read: %s", under, cov.why())
			}
			in := ""
			if cov.partial() {
				in = ", in the parts " + cov.user() + " may read"
			}
			if counted.n == 0 {
				fmt.Fprintf(out, "checked 0 keys under %s%s: there is no key at or below it\n", under, in)
			} else {
				fmt.Fprintf(out, "checked %s under %s%s: %d would be skipped, %s no DNS name\n", plural(counted.n, "key"), under, in, counted.bad, isAre(counted.unnamed))
			}
			if cov.partial() {
				// An answer for part of the keys is no answer for all: exit 2, even when
				// the part is clean.
				fmt.Fprintln(out, cov.note())
				return errReported
			}
			if counted.bad+counted.unnamed > 0 {
				return errFound
			}
			return nil
		},
	}
}

// tally counts the keys a scan reads, the values etcdsd would skip (bad) and the keys
// that are no DNS name (unnamed), and writes a line for each of the two to out, the
// skipped ones after skippedPrefix.
type tally struct {
	n, bad, unnamed int
	out             io.Writer
	skippedPrefix   string
}

func (t *tally) add(kv *mvccpb.KeyValue, err error) {
	t.n++
	if err == nil {
		return
	}
	line, skipped := describe(kv, err)
	if skipped {
		t.bad++
		line = t.skippedPrefix + line
	} else {
		t.unnamed++
	}
	fmt.Fprintln(t.out, line)
}

// quoteKeys joins keys for a message.
func quoteKeys(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = skydns.Quote(k)
	}
	return strings.Join(q, ", ")
}

// describe returns the line check and ls print for a key whose value has err: the key
// and the reason, and for a key that is no DNS name, whose value etcdsd serves (skipped
// false), what it does with it.
func describe(kv *mvccpb.KeyValue, err error) (line string, skipped bool) {
	line = fmt.Sprintf("%s: %v", skydns.Quote(string(kv.Key)), err)
	if skydns.Reason(err) == skydns.ReasonInvalidKey {
		return line + " (no name: its records answer for the names above it only)", false
	}
	return line, true
}

// coverage is what a scan could not read: the spans etcd refused the user, the parts of
// them that the user's roles grant, which were read instead, and the parts they do not.
type coverage struct {
	spans   int          // the spans the scan was to read
	refused []index.Span // the spans etcd refused
	read    []interval   // the parts of refused that the roles grant, read
	unread  []interval   // the parts of refused not read: all of them when acc is nil
	acc     *access      // the user's roles, when they could be read
	accErr  error        // why acc is nil
	denied  error        // etcd's first refusal
	name    string       // the user, as --user or the certificate names it
}

// partial reports whether part of the keys was not read.
func (c *coverage) partial() bool { return len(c.unread) > 0 }

// none reports whether etcd refused every span and the roles grant no part of them.
func (c *coverage) none() bool { return len(c.refused) == c.spans && len(c.read) == 0 }

// user names the user the reads were refused to.
func (c *coverage) user() string {
	if c.acc != nil {
		return c.acc.who()
	}
	if c.name != "" {
		return "user " + c.name
	}
	return "the client"
}

// note says what was not read and why: "not read: /skydns, [/skydns/, /skydns/local/):
// user coredns (role coredns-example) may not read there".
func (c *coverage) note() string {
	return "not read: " + spans(c.unread) + ": " + c.why()
}

// why says why the unread parts were not read.
func (c *coverage) why() string {
	if c.acc != nil {
		if len(c.read) == 0 && len(c.acc.read) > 0 {
			return fmt.Sprintf("%s may not read there (it may read %s)", c.acc.who(), spans(c.acc.read))
		}
		return c.acc.who() + " may not read there"
	}
	return fmt.Sprintf("%v; which parts %s may read is unknown: %v", c.denied, c.user(), c.accErr)
}

// scan calls fn for each of keys and for every key below them, read in pages at one
// revision as the plugin lists them, with the value's decoding error: nil for a value
// etcdsd serves. Where etcd refuses the user a range, scan reads the parts of it that
// the user's roles grant and returns the rest, and why, in the coverage.
func scan(ctx context.Context, cli *clientv3.Client, user string, keys []string, fn func(*mvccpb.KeyValue, error)) (*coverage, error) {
	return readZones(ctx, cli, user, keys, func(kv *mvccpb.KeyValue) {
		_, err := skydns.Decode(string(kv.Key), kv.Value)
		fn(kv, err)
	})
}

// readZones calls fn for every key at and below each of keys (index.ReadZone), read in
// pages at one revision. Where etcd refuses the user a span, it reads the parts of it
// that the user's roles grant and returns the rest, and why, in the coverage.
func readZones(ctx context.Context, cli *clientv3.Client, user string, keys []string, fn func(*mvccpb.KeyValue)) (*coverage, error) {
	var rev int64 // the first page's, for every other
	read := func(s index.Span) error {
		for resp, err := range index.Pages(ctx, cli, s, rev, index.ListPaging) {
			if err != nil {
				return err
			}
			rev = resp.Rev
			for _, kv := range resp.Kvs {
				fn(kv)
			}
		}
		return nil
	}
	cov := &coverage{name: user}
	for _, key := range keys {
		_, err := index.ReadZone(key, false, func(s index.Span) error {
			cov.spans++
			err := read(s)
			if errors.Is(err, rpctypes.ErrPermissionDenied) {
				cov.refused = append(cov.refused, s)
				if cov.denied == nil {
					cov.denied = err
				}
				return nil
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if len(cov.refused) == 0 {
		return cov, nil
	}
	cov.acc, cov.accErr = lookupAccess(ctx, cli, user)
	for _, s := range cov.refused {
		if cov.acc == nil {
			cov.unread = append(cov.unread, spanInterval(s))
			continue
		}
		in, out := split(spanInterval(s), cov.acc.read)
		for _, iv := range in {
			if err := read(iv.span()); err != nil {
				return nil, err
			}
		}
		cov.read = append(cov.read, in...)
		cov.unread = append(cov.unread, out...)
	}
	slices.SortFunc(cov.unread, func(a, b interval) int { return strings.Compare(a.start, b.start) }) // in key order, as etcdctl lists
	return cov, nil
}
