package index

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/etcdsd/etcdsd/internal/devetcd"
)

// Pages reads every page at the first page's revision, also while etcd moves on between
// pages: a response's header says etcd's current revision, not the one read at.
func TestPagesAtOneRevision(t *testing.T) {
	_, srv, cli := devetcd.StartFor(t)
	defer srv.Close()
	ctx := context.Background()
	const root = "/pg/local/example"
	var want []string
	for i := range 10 {
		key := fmt.Sprintf("%s/k%d", root, i)
		if _, err := cli.Put(ctx, key, "before"); err != nil {
			t.Fatal(err)
		}
		want = append(want, key+"=before")
	}
	for _, rev := range []int64{0, -1} { // the current revision; the one given
		var got []string
		start := int64(0)
		if rev == -1 {
			resp, err := cli.Get(ctx, root)
			if err != nil {
				t.Fatal(err)
			}
			start = resp.Header.Revision
		}
		for resp, err := range Pages(ctx, cli, ZoneSpan(root), start, Paging{Size: 3}) {
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range resp.Kvs {
				got = append(got, string(kv.Key)+"="+string(kv.Value))
			}
			// Between pages, every key changes and one goes.
			for i := range 10 {
				if _, err := cli.Put(ctx, fmt.Sprintf("%s/k%d", root, i), "after"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := cli.Delete(ctx, root+"/k9"); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages from revision %d: %v, want %v", start, got, want)
		}
		// Back to the state read, for the next round.
		for i := range 10 {
			if _, err := cli.Put(ctx, fmt.Sprintf("%s/k%d", root, i), "before"); err != nil {
				t.Fatal(err)
			}
		}
	}
}
