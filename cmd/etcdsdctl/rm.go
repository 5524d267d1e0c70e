package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newRmCmd(g *global) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "rm NAME | KEY",
		Short: "Remove NAME's record, or KEY (with -r, and every record below it)",
		Long: `rm deletes the record of NAME: its key, in any case of its letters, as etcdsd finds
records for a name (so MixedCase.example.local and mixedcase.example.local both remove
/skydns/local/example/MixedCase). A KEY under --path, given from its leading "/", is taken
as it is: for a key that no name leads to, such as one with an empty label. With -r rm also
deletes every record below NAME or KEY, in one transaction; a sibling whose key merely
starts with the same letters is left alone. It fails when there was nothing to delete, and
says what is there: a name with records below it only wants -r, and rm counts them below
every spelling of NAME, as -r deletes them.`,
		Example: `  etcdsdctl rm web-server04._web._tcp.example.local
  etcdsdctl rm -r _web._tcp.example.local
  etcdsdctl rm /skydns/local/example/a//empty`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseTarget(g.prefix, args[0])
			if err != nil {
				return err
			}
			root := index.RootKey(g.prefix)
			if t.key == root {
				return fmt.Errorf("%s is --path itself: rm deletes records below it, not all of them (etcdctl del --prefix does)", skydns.Quote(root))
			}
			return g.withClient(func(ctx context.Context, cli *clientv3.Client) error {
				keys, err := t.keys(ctx, cli, g.userName(), root)
				if err != nil {
					return err
				}
				deleted, err := remove(ctx, cli, g.userName(), keys, recursive)
				if err != nil {
					return err
				}
				total := 0
				var parts []string
				for i, key := range keys {
					d := deleted[i]
					total += d.key + d.below
					switch {
					case d.key == 1 && d.below > 0:
						parts = append(parts, fmt.Sprintf("%s and %s below it", skydns.Quote(key), plural(d.below, "key")))
					case d.key == 1:
						parts = append(parts, skydns.Quote(key))
					case d.below > 0:
						parts = append(parts, fmt.Sprintf("%s below %s", plural(d.below, "key"), skydns.Quote(key)))
					}
				}
				if total == 0 {
					return nothingToDelete(ctx, cli, t, keys, recursive)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s: %s\n", plural(total, "key"), strings.Join(parts, "; "))
				if !recursive {
					// Below every spelling of the name, as -r would delete them.
					for _, key := range keys {
						n, err := countBelow(ctx, cli, key)
						if err != nil {
							fmt.Fprintf(cmd.ErrOrStderr(), "the keys below %s, which rm -r deletes, could not be counted: %v\n", skydns.Quote(key), err)
						} else if n > 0 {
							fmt.Fprintf(cmd.OutOrStdout(), "%s below %s %s left (rm -r deletes the keys below a name too)\n",
								plural(n, "key"), skydns.Quote(key), verb(n))
						}
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "also delete every record below NAME")
	return cmd
}

// removed is what rm deleted of one key: the key (0 or 1) and the keys below it.
type removed struct{ key, below int }

// remove deletes keys, and with recursive every key below them, in one transaction, and
// returns what it deleted of each. A refusal says what the user may not write.
func remove(ctx context.Context, cli *clientv3.Client, user string, keys []string, recursive bool) ([]removed, error) {
	var ops []clientv3.Op
	var need []interval
	for _, key := range keys {
		ops = append(ops, clientv3.OpDelete(key))
		need = append(need, spanInterval(index.Span{Start: key}))
		if recursive {
			below := index.Below(key)
			ops = append(ops, clientv3.OpDelete(below.Start, clientv3.WithRange(below.End)))
			need = append(need, spanInterval(below))
		}
	}
	resp, err := cli.Txn(ctx).Then(ops...).Commit()
	if errors.Is(err, rpctypes.ErrPermissionDenied) {
		return nil, refusal(ctx, cli, user, "delete", need, err)
	}
	if err != nil {
		return nil, fmt.Errorf("deleting %s: %w", spans(need), err)
	}
	out := make([]removed, len(keys))
	per := len(ops) / len(keys)
	for i, r := range resp.Responses {
		n := int(r.GetResponseDeleteRange().Deleted)
		if i%per == 0 {
			out[i/per].key = n
		} else {
			out[i/per].below = n
		}
	}
	return out, nil
}

// countBelow returns how many keys lie below key.
func countBelow(ctx context.Context, cli *clientv3.Client, key string) (int, error) {
	below := index.Below(key)
	resp, err := cli.Get(ctx, below.Start, clientv3.WithRange(below.End), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return int(resp.Count), nil
}

// nothingToDelete is rm's error when it deleted nothing: what is there instead, counted
// below every one of keys, as rm -r deletes them.
func nothingToDelete(ctx context.Context, cli *clientv3.Client, t target, keys []string, recursive bool) error {
	what := "no record for " + skydns.Quote(t.name)
	if t.name == "" {
		what = "no key " + skydns.Quote(t.key)
	}
	if !recursive {
		total := 0
		var at, each []string // the keys with keys below them, and how many each
		for _, key := range keys {
			n, err := countBelow(ctx, cli, key)
			if err != nil {
				if t.name == "" {
					return fmt.Errorf("%s; the keys below it could not be counted: %w", what, err)
				}
				return fmt.Errorf("%s; the keys below %s could not be counted: %w", what, skydns.Quote(key), err)
			}
			if n > 0 {
				total += n
				at = append(at, key)
				each = append(each, fmt.Sprintf("%d below %s", n, skydns.Quote(key)))
			}
		}
		switch {
		case total == 0:
		case t.name == "": // the key is the argument: say it once
			return fmt.Errorf("%s: %s below it; rm -r deletes them with it", what, plural(total, "key"))
		case len(at) == 1:
			return fmt.Errorf("%s at %s: a name with %s below it; rm -r %s deletes them with it",
				what, skydns.Quote(at[0]), plural(total, "key"), t.arg)
		default: // spellings of the name with capitals
			return fmt.Errorf("%s: a name with %s below it (%s); rm -r %s deletes them with it",
				what, plural(total, "key"), strings.Join(each, ", "), t.arg)
		}
	}
	if t.name == "" {
		return fmt.Errorf("%s, nor any below it", what)
	}
	return fmt.Errorf("%s: no key %s, in any case of its letters, nor any below it", what, skydns.Quote(t.key))
}

// refusal explains etcd's refusal err to user of what (read, write or delete) on need: the
// parts of need that the user's roles grant.
func refusal(ctx context.Context, cli *clientv3.Client, user, what string, need []interval, err error) error {
	acc, aerr := lookupAccess(ctx, cli, user)
	if aerr != nil {
		return fmt.Errorf("etcd refused to %s %s (%w); which keys %s may %s there is unknown: %v", what, spans(need), err, whoIs(user), what, aerr)
	}
	perms, verb := acc.read, "read"
	if what != "read" {
		perms, verb = acc.write, "write"
	}
	var in []interval
	for _, iv := range need {
		i, _ := split(iv, perms)
		in = append(in, i...)
	}
	granted := "none of it"
	if len(in) > 0 {
		granted = "only " + spans(in) + " of it"
	}
	return fmt.Errorf("etcd refused %s to %s %s (%w): its roles grant %s on %s", acc.who(), what, spans(need), err, verb, granted)
}

// whoIs names user for a message: "user coredns", or "the client" for none.
func whoIs(user string) string {
	if user == "" {
		return "the client"
	}
	return "user " + user
}
