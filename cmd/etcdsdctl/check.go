package main

import (
	"context"
	"fmt"
	"path"

	"github.com/etcdsd/etcdsd/skydns"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newCheckCmd(g *global) *cobra.Command {
	return &cobra.Command{
		Use:   "check [NAME]",
		Short: "Report every value under --path (or NAME) that etcdsd would skip",
		Long: `check reads every key under --path, or only NAME's record and the records below it,
and prints each value etcdsd would skip, with the reason its skipped_values_total metric
gives. It exits 1 when it finds any.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := path.Join("/", g.prefix)
			if len(args) == 1 {
				var err error
				if key, err = skydns.Key(g.prefix, args[0]); err != nil {
					return err
				}
			}
			var n, bad int
			err := g.withClient(func(ctx context.Context, cli *clientv3.Client) error {
				return scan(ctx, cli, key, func(kv *mvccpb.KeyValue, err error) {
					n++
					if err != nil {
						bad++
						fmt.Fprintf(cmd.OutOrStdout(), "%s: %v\n", kv.Key, err)
					}
				})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "checked %d keys under %s: %d would be skipped\n", n, key, bad)
			if bad > 0 {
				return errReported
			}
			return nil
		},
	}
}

// scanPage is how many keys one range request of scan reads.
const scanPage = 1000

// scan calls fn for key and for every key below it, read in pages at one revision, with
// the value's decoding error: nil for a value etcdsd serves.
func scan(ctx context.Context, cli *clientv3.Client, key string, fn func(*mvccpb.KeyValue, error)) error {
	visit := func(kvs []*mvccpb.KeyValue) {
		for _, kv := range kvs {
			_, err := skydns.Decode(string(kv.Key), kv.Value)
			fn(kv, err)
		}
	}
	from, end := below(key)
	var rev int64
	if key != "/" {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			return err
		}
		rev = resp.Header.Revision
		visit(resp.Kvs)
	}
	for {
		resp, err := cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(scanPage), clientv3.WithRev(rev))
		if err != nil {
			return err
		}
		rev = resp.Header.Revision
		visit(resp.Kvs)
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// below returns the etcd range of the keys below key: "key/" up to "key0", as '0' follows
// '/'; a plain prefix would also take siblings such as "key-2". Below the root "/" lies
// every key that starts with '/'.
func below(key string) (start, end string) {
	if key == "/" {
		return "/", "0"
	}
	return key + "/", key + "0"
}
