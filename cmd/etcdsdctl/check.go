package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newCheckCmd(g *global) *cobra.Command {
	return &cobra.Command{
		Use:   "check [NAME]",
		Short: "Report every value under --path (or NAME) that etcdsd would skip",
		Long: `check reads every key under --path, or only NAME's record and the records below it,
and prints each value etcdsd would skip, with the reason its skipped_values_total metric
gives, and each key that is no DNS name (its records answer only for the names above it).
It exits 1 when it finds any.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := index.RootKey(g.prefix)
			if len(args) == 1 {
				var err error
				if key, err = skydns.Key(g.prefix, args[0]); err != nil {
					return err
				}
			}
			var n, bad, unnamed int
			err := g.withClient(func(ctx context.Context, cli *clientv3.Client) error {
				return scan(ctx, cli, key, func(kv *mvccpb.KeyValue, err error) {
					n++
					if err == nil {
						return
					}
					line, skipped := describe(kv, err)
					if skipped {
						bad++
					} else {
						unnamed++
					}
					fmt.Fprintln(cmd.OutOrStdout(), line)
				})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "checked %d keys under %s: %d would be skipped, %d are no DNS name\n", n, key, bad, unnamed)
			if bad+unnamed > 0 {
				return errReported
			}
			return nil
		},
	}
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

// scan calls fn for key and for every key below it, read in pages at one revision as the
// plugin lists them, with the value's decoding error: nil for a value etcdsd serves.
func scan(ctx context.Context, cli *clientv3.Client, key string, fn func(*mvccpb.KeyValue, error)) error {
	below, apex := index.BelowSpans(key)
	var rev int64 // the first page's, for every other
	for _, s := range []index.Span{apex, below} {
		for resp, err := range index.Pages(ctx, cli, s, rev, index.ListPaging) {
			if errors.Is(err, rpctypes.ErrPermissionDenied) && s == apex {
				break // a role that grants the keys below key only, as the plugin copes with
			}
			if err != nil {
				return err
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				_, err := skydns.Decode(string(kv.Key), kv.Value)
				fn(kv, err)
			}
		}
	}
	return nil
}
