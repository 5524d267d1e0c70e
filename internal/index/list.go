package index

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/coredns/coredns/plugin/etcd/msg"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Paging is how a range of keys is read: page by page, so that no one request holds
// etcd, or its answer the client, for long.
type Paging struct {
	Size int64 // keys per page
	// Max, when above Size, lets a page grow to a sixteenth of the keys left, up to Max
	// keys.
	Max     int64
	Timeout time.Duration // for one page; 0: none but ctx's
}

// ListPageSize is the keys of a list's first page. Each page makes etcd count the keys
// from the page's start to the range's end (etcd-io/etcd#11057, #16510), so a list costs
// about keys²/(2·page) key visits: when the first page's count says the range holds many
// more, ListPaging's pages grow up to 50,000 keys (about 5 MB of SkyDNS values): at 1M
// keys about 10M visits, not 50M.
const ListPageSize = 10000

// PageTimeout bounds one request of a read: a page of a list or a self-check.
const PageTimeout = 5 * time.Second

// ListPaging is how a list reads a zone.
var ListPaging = Paging{Size: ListPageSize, Max: 5 * ListPageSize, Timeout: PageTimeout}

// Getter reads ranges of keys, as clientv3.KV does.
type Getter interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
}

// Reader is what a list reads etcd with: ranges of keys and the leases they hold.
type Reader interface {
	Getter
	LeaseReader
}

// Page is one page of a paged read, with the revision every page of the read is read at.
type Page struct {
	*clientv3.GetResponse
	Rev int64
}

// Pages reads s page by page, every page at revision rev or, when rev is 0, at the
// revision of the first page, etcd's current one: the pages together are s as it was at
// one revision, Page.Rev. A response's header carries etcd's current revision, not the
// one read at, so only the first page's is taken. opts are added to every page's request
// (clientv3.WithKeysOnly, say). It yields each page, or the error that ended the read and
// then stops; a revision etcd has compacted fails with rpctypes.ErrCompacted.
func Pages(ctx context.Context, g Getter, s Span, rev int64, p Paging, opts ...clientv3.OpOption) iter.Seq2[Page, error] {
	return func(yield func(Page, error) bool) {
		from, size := s.Start, p.Size
		for {
			o := append([]clientv3.OpOption{clientv3.WithRange(s.End), clientv3.WithLimit(size)}, opts...)
			if rev != 0 {
				o = append(o, clientv3.WithRev(rev))
			}
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if p.Timeout > 0 {
				pctx, cancel = context.WithTimeout(ctx, p.Timeout)
			}
			resp, err := g.Get(pctx, from, o...)
			cancel()
			if err != nil {
				yield(Page{}, fmt.Errorf("reading %v: %w", s, err))
				return
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			if !yield(Page{resp, rev}, nil) || !resp.More || len(resp.Kvs) == 0 {
				return
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
			if p.Max > p.Size {
				left := resp.Count - int64(len(resp.Kvs))
				size = min(max(p.Size, left/16), p.Max)
			}
		}
	}
}

// Listed is what a complete read found.
type Listed struct {
	Rev    int64 // the revision read
	Leases int   // leases seen for the first time
	// Restored is set when etcd's history was found not to be the index's (Builder.Heard,
	// Builder.Restored): every key was decoded afresh and the serial's epoch moved on.
	Restored bool
	// Promoted is set when a page's header carried a new raft term (Builder.Heard).
	Promoted bool
}

// List reads the zone's keys from etcd with r, all at one revision, and swaps them in
// whole, so that no snapshot is ever made from part of a list; on an error the builder
// keeps what it had. The leases of the keys are resolved while the next pages arrive.
func (b *Builder) List(ctx context.Context, r Reader, p Paging, now func() time.Time) (Listed, error) {
	leaseq, resolved := make(chan []*Lease, 4), make(chan int)
	go func() {
		n := 0
		for batch := range leaseq {
			ResolveLeases(ctx, r, batch, now)
			n += len(batch)
		}
		resolved <- n
	}()
	l := b.list()
	spans, err := l.read(ctx, r, p, leaseq)
	close(leaseq)
	leases := <-resolved
	if err != nil {
		l.abort()
		return Listed{}, err
	}
	l.done(spans)
	return Listed{Rev: l.rev, Leases: leases, Restored: l.restored, Promoted: l.promoted}, nil
}

// read reads the zone's keys into l, all at the revision of the first page, and returns
// the spans it read (ReadZone).
func (l *listing) read(ctx context.Context, g Getter, p Paging, leaseq chan<- []*Lease) ([]Span, error) {
	return ReadZone(l.b.root, true, func(s Span) error { return l.readSpan(ctx, g, s, p, leaseq) })
}

// readSpan reads one span into l, at l's revision or, for the first span of a list, at
// the current one, which becomes l's (listing.begin). The next page is read while this
// one is decoded.
func (l *listing) readSpan(ctx context.Context, g Getter, s Span, p Paging, leaseq chan<- []*Lease) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan *clientv3.GetResponse)
	var failed error
	rev := l.rev
	go func() {
		defer close(pages)
		for resp, err := range Pages(ctx, g, s, rev, p) {
			if err != nil {
				failed = err
				return
			}
			select {
			case pages <- resp.GetResponse:
			case <-ctx.Done():
				failed = ctx.Err()
				return
			}
		}
	}()
	for resp := range pages {
		if l.rev == 0 {
			l.begin(resp.Header)
		} else if newTerm, _ := l.b.Heard(resp.Header); newTerm {
			l.promoted = true
		}
		if fresh := l.page(resp.Kvs); len(fresh) > 0 {
			leaseq <- fresh
		}
	}
	return failed // written before pages closed
}

// Read reads zone's keys under o.PathPrefix once, with r, and returns the snapshot the
// plugin's index holds at that revision, without a watch: Snapshot.Build answers from
// it exactly as the plugin does with the same options. Values that do not decode are
// skipped as the plugin skips them. etcdsdctl ls previews answers with it.
func Read(ctx context.Context, r Reader, o *Options, zone string) (*Snapshot, error) {
	b := NewBuilder(RootKey(msg.Path(zone, o.PathPrefix)))
	if _, err := b.List(ctx, r, ListPaging, o.Now); err != nil {
		return nil, err
	}
	return b.Snapshot(0, nil), nil
}
