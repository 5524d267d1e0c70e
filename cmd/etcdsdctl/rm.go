package main

import (
	"context"
	"fmt"

	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newRmCmd(g *global) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove NAME's record (with -r, and every record below it)",
		Long: `rm deletes the record of NAME. With -r it also deletes every record below NAME, in
one transaction; a sibling whose key merely starts with the same letters is left alone.
It fails when there was nothing to delete.`,
		Example: `  etcdsdctl rm web-server04._web._tcp.example.local
  etcdsdctl rm -r _web._tcp.example.local`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := skydns.Key(g.prefix, args[0])
			if err != nil {
				return err
			}
			ops := []clientv3.Op{clientv3.OpDelete(key)}
			if recursive {
				below := index.Below(key)
				ops = append(ops, clientv3.OpDelete(below.Start, clientv3.WithRange(below.End)))
			}
			var deleted int64
			err = g.withClient(func(ctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Txn(ctx).Then(ops...).Commit()
				if err != nil {
					return err
				}
				for _, r := range resp.Responses {
					deleted += r.GetResponseDeleteRange().Deleted
				}
				return nil
			})
			if err != nil {
				return err
			}
			if deleted == 0 {
				return fmt.Errorf("no record at %s", key)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d keys at %s\n", deleted, key)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "also delete every record below NAME")
	return cmd
}
