package etcdsd

import (
	"context"

	"github.com/coredns/coredns/request"
	"github.com/etcdsd/etcdsd/internal/index"
)

// lookup returns the answer to state's question in zone from snap: the one prepared
// from an earlier query while current, or one built now (index.Snapshot.Build), which is
// kept for the next. An NXDOMAIN that falls through to the next plugin is not kept, so
// that the next query falls through too. An error means SERVFAIL.
func (e *Etcdsd) lookup(ctx context.Context, snap *index.Snapshot, zone string, state request.Request) (*index.Answer, error) {
	q := index.Question{Name: state.QName(), Type: state.QType()}
	if a := snap.Prepared(q, e.Now); a != nil {
		return a, nil
	}
	a, err := snap.Build(ctx, &e.Options, zone, state)
	if err != nil {
		return nil, err
	}
	if a.Capped() {
		cappedTotal.Inc()
	}
	if !a.NameMissing() || !e.Fall.Through(state.Name()) {
		snap.Keep(q, a)
	}
	return a, nil
}
