package etcdsd

import (
	"testing"
	"time"
)

// TestLiveness feeds a watch session's responses and the clock to liveness, from memory,
// and checks what each tick asks of etcd: the rules by which a frozen member, a quiet
// direct etcd, a watch ahead of etcd's revision and a gRPC proxy are told apart.
func TestLiveness(t *testing.T) {
	const silent, quiet = time.Second, 30 * time.Second
	start := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	type event struct {
		at    time.Duration
		resp  *response // a response at at
		ahead bool      // of a created response
		// status, when set, answers a tickStatus at at: every endpoint answered or not
		status *bool
		want   tick      // what a tick at at asks, when no response or status is given
		then   quietStep // after status
		proxy  bool      // after status: the endpoint was just taken for a proxy
	}
	created, progress, events := responseCreated, responseProgress, responseEvents
	yes, no := true, false
	for _, tc := range []struct {
		name               string
		answered, wasProxy bool // what the peer had shown before the session
		events             []event
	}{
		{name: "a watch that talks is asked for progress", events: []event{
			{at: 0, resp: &created},
			{at: 500 * time.Millisecond, want: tickProgress},
			{at: 900 * time.Millisecond, resp: &progress},
			{at: 1800 * time.Millisecond, want: tickProgress},
		}},
		{name: "silence before the watch is created: give it up", events: []event{
			{at: 1500 * time.Millisecond, want: tickSilent},
		}},
		{name: "a member that answered progress and falls silent is frozen, not a proxy", answered: true, events: []event{
			{at: 0, resp: &created},
			{at: 1500 * time.Millisecond, want: tickSilent},
		}},
		{name: "created, never a progress answer, every endpoint answers status: a proxy", events: []event{
			{at: 0, resp: &created},
			{at: 1500 * time.Millisecond, want: tickStatus},
			{at: 1500 * time.Millisecond, status: &yes, then: quietAlive, proxy: true},
			{at: 2 * time.Second, want: tickNothing},
			{at: 2600 * time.Millisecond, want: tickStatus},
			{at: 2600 * time.Millisecond, status: &yes, then: quietAlive},
		}},
		{name: "a status some endpoint does not answer: give the watch up", events: []event{
			{at: 0, resp: &created},
			{at: 1500 * time.Millisecond, want: tickStatus},
			{at: 1500 * time.Millisecond, status: &no, then: quietSilent},
		}},
		{name: "ahead of etcd's revision: status stands in, and no proxy is taken", answered: true, events: []event{
			{at: 0, resp: &created, ahead: true},
			{at: 1500 * time.Millisecond, want: tickStatus},
			{at: 1500 * time.Millisecond, status: &yes, then: quietAlive},
			{at: 2 * time.Second, want: tickProgress},
			{at: 2 * time.Second, resp: &events},
			{at: 3500 * time.Millisecond, want: tickSilent},
		}},
		{name: "a proxy's watch that delivers nothing for long is looked into", wasProxy: true, events: []event{
			{at: 0, resp: &created},
			{at: 20 * time.Second, resp: &progress},
			{at: 25 * time.Second, status: &yes, then: quietAlive},
			{at: 31 * time.Second, want: tickStatus},
			{at: 31 * time.Second, status: &yes, then: quietLookInto},
		}},
		{name: "events keep a proxy's watch from being looked into", wasProxy: true, events: []event{
			{at: 0, resp: &created},
			{at: 29 * time.Second, resp: &events},
			{at: 31 * time.Second, status: &yes, then: quietAlive},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &peer{}
			p.answersProgress.Store(tc.answered)
			p.proxy.Store(tc.wasProxy)
			l := newLiveness(start, silent, quiet, p)
			for i, ev := range tc.events {
				switch {
				case ev.resp != nil:
					l.responded(at(ev.at), *ev.resp, ev.ahead)
				case ev.status != nil:
					step, proxy := l.statusAnswered(at(ev.at), *ev.status)
					if step != ev.then || proxy != ev.proxy {
						t.Errorf("event %d, status %v at %v: %v, new proxy %v; want %v, %v", i, *ev.status, ev.at, step, proxy, ev.then, ev.proxy)
					}
				default:
					if got := l.tick(at(ev.at)); got != ev.want {
						t.Errorf("event %d, tick at %v: %v, want %v", i, ev.at, got, ev.want)
					}
				}
			}
		})
	}
}
