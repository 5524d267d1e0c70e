package compat

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcdsd/etcdsd/skydns"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
)

// TestModel applies seeded sequences of the writes users make and of the faults etcd goes
// through while one CoreDNS serves the same zone through etcdsd and through the etcd
// plugin, which reads etcd on every query and so says what the index must hold. After
// every operation, and a barrier write that etcdsd's index must reach, the names the
// operation touched and a few others get the same answers from both, or the test fails
// with the seed and the operations. etcdsd checks itself against etcd every half second
// meanwhile (verify), and must never find a divergence.
var (
	modelOps   = flag.Int("model.ops", 120, "operations per etcd in TestModel")
	modelSeed  = flag.Uint64("model.seed", 1, "seed of TestModel's operations")
	modelWorld = flag.String("model.etcd", "", "run TestModel only on the etcds whose names contain one of these, comma separated (embedded, 3.4, cluster)")
)

func TestModel(t *testing.T) {
	for _, m := range worlds(t) {
		if !slices.ContainsFunc(strings.Split(*modelWorld, ","), func(part string) bool { return strings.Contains(m.name, part) }) {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			w := m.make(t)
			defer w.close()
			path := fmt.Sprintf("/model-%d", *modelSeed)
			// The self-check runs twice a second, on every change, compaction and restart.
			p := startPairOn(t, dataset{name: m.name, zones: "example.local"}, path, w.target(), []string{"verify 500ms"})
			defer p.stop()
			r := newRun(t, w.target(), p, path, "example.local", *modelSeed, nil)
			r.w = w
			r.replay = fmt.Sprintf("(replay: go test ./test/compat -run 'TestModel/%s' -model.etcd=%q -model.seed=%d -model.ops=%d)",
				strings.ReplaceAll(m.name, " ", "_"), m.name, *modelSeed, *modelOps)
			r.issueCases()
			for i := range *modelOps {
				r.step(i)
				if (i+1)%1000 == 0 {
					t.Logf("%d operations, %d queries", i+1, r.queries)
				}
			}
			if n := r.divergences(); n != 0 {
				t.Errorf("etcdsd's self-check found %v divergences; the answers never differed", n)
			}
			t.Logf("%d operations on %s, %d queries, %d with answers, %d restarts, %d member kills",
				len(r.log), m.name, r.queries, r.answered, r.restarts, r.kills)
		})
	}
}

// run is one model run: the pair serving the zone, what the run wrote, and its log.
type run struct {
	t      *testing.T
	w      world // for faults; nil in a run of writes only
	e      target
	p      *pair
	path   string // the pair's etcd path
	origin string // the zone written to, such as example.local.
	rel    string // its key below path, such as local/example
	zone   string // its key: path + "/" + rel
	rng    *rand.Rand
	replay string
	// servfail: the data set's next plugin fails some queries (check's dataset.servfail),
	// so a SERVFAIL is an answer to compare, not etcd being away.
	servfail bool

	keys   map[string]bool    // keys below zone the run has written and not deleted
	leases []clientv3.LeaseID // leases the run holds keys on
	down   []int              // members killed and not started again
	log    []string           // every operation so far

	queries, answered, restarts, kills, barriers int
}

// newRun starts a run of writes to zone under path, which p serves from e and where
// records are.
func newRun(t *testing.T, e target, p *pair, path, zone string, seed uint64, records []record) *run {
	origin := dns.Fqdn(zone)
	labels := dns.SplitDomainName(origin)
	slices.Reverse(labels)
	rel := strings.Join(labels, "/")
	r := &run{t: t, e: e, p: p, path: path, origin: origin, rel: rel, zone: path + "/" + rel,
		rng: rand.New(rand.NewPCG(seed, 0x6d6f64656c)), keys: map[string]bool{}}
	for _, rec := range records {
		if rest, ok := strings.CutPrefix(rec.key, rel+"/"); ok {
			r.keys[rest] = true
		}
	}
	return r
}

// do runs one write, retrying while etcd is away (restarting, or without a leader).
func (r *run) do(what string, f func(ctx context.Context) error) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		var refused rpctypes.EtcdError
		if errors.As(err, &refused) && refused.Code() != codes.Unavailable || time.Now().After(deadline) {
			r.t.Fatalf("%s: %v %s", what, err, r.replay)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *run) note(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf("%d: ", len(r.log))+fmt.Sprintf(format, args...))
}

// key returns a random key below the zone, an existing one half of the time. A new key
// never lies below another key or above one: there etcdsd answers a name's own record
// with its children's, where the etcd plugin answers the children's alone
// (docs/differences.md; TestAnswersFollowTheRFCs and TestAgainstFile test it).
func (r *run) key() string {
	if len(r.keys) > 0 && r.rng.IntN(2) == 0 {
		return r.existing()
	}
	for {
		labels := []string{pick(r.rng, upperLabels)}
		for range r.rng.IntN(3) {
			labels = append(labels, pick(r.rng, innerLabels))
		}
		k := strings.Join(append(labels, pick(r.rng, leafLabels)), "/")
		if !r.nested(k) {
			return k
		}
	}
}

// nested reports whether k lies below a key of the run or above one.
func (r *run) nested(k string) bool {
	for o := range r.keys {
		if strings.HasPrefix(k, o+"/") || strings.HasPrefix(o, k+"/") {
			return true
		}
	}
	return false
}

// existing returns a random key the run has written, or "" when there is none.
func (r *run) existing() string {
	if len(r.keys) == 0 {
		return ""
	}
	keys := sortedKeys(r.keys)
	return keys[r.rng.IntN(len(keys))]
}

// value returns a random SkyDNS value whose host names are names of the zone. A key's name
// with a label such as "*" is no host name, a value naming it is skipped on purpose
// (TestDeviationInvalidValues), so it is no target here.
func (r *run) value() string {
	var names []string
	for k := range r.keys {
		if n := keyName(r.rel + "/" + k); askable(n) && skydns.ValidHost(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		names = []string{"x." + r.origin}
	}
	return value(r.rng, names)
}

// step generates and applies operation i, then compares. Faults come in turn every
// 15th operation, so that a short run has each of them; writes otherwise.
func (r *run) step(i int) {
	if i%15 == 14 {
		r.compare(r.fault(i / 15))
		return
	}
	r.compare(r.write())
}

// write applies one write of a random shape and returns the keys it touched.
func (r *run) write() []string {
	switch n := r.rng.IntN(100); {
	case n < 25:
		return r.put()
	case n < 35:
		return r.putLeased(3600)
	case n < 40:
		return r.putLeased(2) // expires during the run, at no chosen moment
	case n < 65:
		return r.txn(1 + r.rng.IntN(40))
	case n < 78:
		return r.del()
	case n < 90:
		return r.delPrefix()
	default:
		return r.revoke()
	}
}

func (r *run) put() []string {
	k, v := r.key(), r.value()
	r.do("put", func(ctx context.Context) error { _, err := r.e.cli.Put(ctx, r.zone+"/"+k, v); return err })
	r.keys[k] = true
	r.note("put %s %s", k, v)
	return []string{k}
}

// putLeased puts one to four keys on a new lease of ttl seconds.
func (r *run) putLeased(ttl int64) []string {
	var id clientv3.LeaseID
	r.do("grant", func(ctx context.Context) error {
		l, err := r.e.cli.Grant(ctx, ttl)
		if err == nil {
			id = l.ID
		}
		return err
	})
	var ops []clientv3.Op
	var keys, desc []string
	for range 1 + r.rng.IntN(4) {
		k := r.key()
		if slices.Contains(keys, k) { // one transaction may not touch a key twice
			continue
		}
		v := r.value()
		ops = append(ops, clientv3.OpPut(r.zone+"/"+k, v, clientv3.WithLease(id)))
		keys = append(keys, k)
		desc = append(desc, k+" "+v)
		r.keys[k] = true
	}
	r.do("leased puts", func(ctx context.Context) error { _, err := r.e.cli.Txn(ctx).Then(ops...).Commit(); return err })
	r.leases = append(r.leases, id)
	r.note("lease %x of %ds on {%s}", id, ttl, strings.Join(desc, "; "))
	return keys
}

// txn writes n puts and deletes across names in one revision; a delete and a put of
// another key move a record.
func (r *run) txn(n int) []string {
	var ops []clientv3.Op
	var keys, desc []string
	seen := map[string]bool{}
	for range n {
		k := r.key()
		if seen[k] { // one transaction may not touch a key twice
			continue
		}
		seen[k] = true
		keys = append(keys, k)
		if r.rng.IntN(10) < 3 {
			ops = append(ops, clientv3.OpDelete(r.zone+"/"+k))
			delete(r.keys, k)
			desc = append(desc, "del "+k)
			continue
		}
		v := r.value()
		ops = append(ops, clientv3.OpPut(r.zone+"/"+k, v))
		r.keys[k] = true
		desc = append(desc, "put "+k+" "+v)
	}
	r.do("txn", func(ctx context.Context) error { _, err := r.e.cli.Txn(ctx).Then(ops...).Commit(); return err })
	r.note("txn {%s}", strings.Join(desc, "; "))
	return keys
}

func (r *run) del() []string {
	k := r.existing()
	if k == "" {
		return r.put()
	}
	r.do("delete", func(ctx context.Context) error { _, err := r.e.cli.Delete(ctx, r.zone+"/"+k); return err })
	delete(r.keys, k)
	r.note("del %s", k)
	return []string{k}
}

// delPrefix deletes everything below a name that has keys, as etcdctl del --prefix NAME/.
func (r *run) delPrefix() []string {
	k := r.existing()
	if k == "" {
		return r.put()
	}
	labels := strings.Split(k, "/")
	prefix := strings.Join(labels[:r.rng.IntN(len(labels))], "/")
	if prefix != "" {
		prefix += "/"
	}
	r.do("del --prefix", func(ctx context.Context) error {
		_, err := r.e.cli.Delete(ctx, r.zone+"/"+prefix, clientv3.WithPrefix())
		return err
	})
	var gone []string
	for key := range r.keys {
		if strings.HasPrefix(key, prefix) {
			delete(r.keys, key)
			gone = append(gone, key)
		}
	}
	slices.Sort(gone)
	r.note("del --prefix %s/%s (%d keys)", r.zone, prefix, len(gone))
	return gone
}

// revoke revokes a lease the run holds keys on, which deletes them all in one revision.
func (r *run) revoke() []string {
	if len(r.leases) == 0 {
		return r.putLeased(3600)
	}
	i := r.rng.IntN(len(r.leases))
	id := r.leases[i]
	r.leases = slices.Delete(r.leases, i, i+1)
	var keys []string
	r.do("lease keys", func(ctx context.Context) error {
		ttl, err := r.e.cli.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
		if err == nil {
			for _, k := range ttl.Keys {
				keys = append(keys, strings.TrimPrefix(string(k), r.zone+"/"))
			}
		}
		return err
	})
	r.do("revoke", func(ctx context.Context) error {
		_, err := r.e.cli.Revoke(ctx, id)
		if err != nil && strings.Contains(err.Error(), "lease not found") {
			return nil // it expired
		}
		return err
	})
	for _, k := range keys {
		delete(r.keys, k)
	}
	r.note("revoke %x (%v)", id, keys)
	return keys
}

// fault applies the n-th fault of the rotation.
func (r *run) fault(n int) []string {
	ctx := context.Background()
	switch n % 6 {
	case 0:
		r.do("compact", func(ctx context.Context) error {
			resp, err := r.e.cli.Get(ctx, "/")
			if err == nil {
				_, err = r.e.cli.Compact(ctx, resp.Header.Revision)
			}
			return err
		})
		r.note("compact")
	case 1:
		for i, ep := range r.e.endpoints {
			if slices.Contains(r.down, i) {
				continue
			}
			r.do("defragment", func(ctx context.Context) error { _, err := r.e.cli.Defragment(ctx, ep); return err })
		}
		r.note("defragment")
	case 2:
		// A lease that runs out deletes all its keys in one revision.
		keys := r.putLeased(1)
		id := r.leases[len(r.leases)-1]
		r.leases = r.leases[:len(r.leases)-1]
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			ttl, err := r.e.cli.TimeToLive(ctx, id)
			if err == nil && ttl.TTL == -1 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, k := range keys {
			delete(r.keys, k)
		}
		r.note("lease %x expired", id)
		return keys
	case 3:
		if err := r.w.restart(); err != nil {
			r.t.Fatalf("restarting etcd: %v %s", err, r.replay)
		}
		r.restarts++
		r.note("etcd restarted")
	case 4:
		if r.w.members() == 1 {
			return r.put()
		}
		if len(r.down) > 0 {
			i := r.down[0]
			if err := r.w.start(i); err != nil {
				r.t.Fatalf("starting member %d: %v %s", i, err, r.replay)
			}
			r.down = r.down[1:]
			r.note("member %d started again", i)
			break
		}
		i := r.rng.IntN(r.w.members())
		r.w.kill(i)
		r.down = append(r.down, i)
		r.kills++
		r.note("member %d killed", i)
	case 5:
		// Writes of many keys while etcd is away from etcdsd are what a re-list or a
		// resumed watch must catch up with.
		return r.txn(40)
	}
	return nil
}

// barrier writes a key in the zone and waits until etcdsd's index holds it, and so every
// write before it.
func (r *run) barrier() {
	r.barriers++
	var rev int64
	r.do("barrier", func(ctx context.Context) error {
		resp, err := r.e.cli.Put(ctx, r.zone+"/barrier", fmt.Sprintf(`{"text":"barrier %d"}`, r.barriers))
		if err == nil {
			rev = resp.Header.Revision
		}
		return err
	})
	waitIndexed(r.t, r.zone, rev)
}

// compare asks both plugins about the touched keys' names and their ancestors, with every
// type a value can answer, and about a few other names, with A and SRV.
func (r *run) compare(touched []string) {
	r.t.Helper()
	var qs []query
	names := map[string]bool{r.origin: true}
	for _, k := range touched {
		name := keyName(r.rel + "/" + k)
		for dns.CountLabel(name) > dns.CountLabel(r.origin) {
			names[name] = askable(name)
			off, _ := dns.NextLabel(name, 0)
			name = name[off:]
		}
	}
	for _, n := range sortedKeys(names) {
		if !names[n] {
			continue
		}
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX} {
			qs = append(qs, query{name: n, qtype: qt, edns: true})
		}
	}
	for range 3 {
		if k := r.existing(); k != "" && askable(keyName(r.rel+"/"+k)) {
			n := keyName(r.rel + "/" + k)
			qs = append(qs, query{name: n, qtype: dns.TypeA, edns: true}, query{name: n, qtype: dns.TypeSRV, edns: true})
		}
	}
	// A difference may be an event after the barrier that one plugin saw and the other
	// not yet (a lease running out), the lease TTLs a new leader extended, which etcdsd
	// asks for again when it hears of the leader, or a lease in its last second, which
	// the etcd plugin, asking etcd, and etcdsd, counting down what it learned, see end at
	// moments up to a second apart (the one answers the clamped lease TTL, the other the
	// default TTL): it must be gone once the lease is, 2.5 s later at the most here.
	var diff string
	for attempt := range 6 {
		if attempt > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		r.barrier()
		if diff = r.differ(qs); diff == "" {
			return
		}
	}
	r.t.Fatalf("after operation %s\n%s\n%s\noperations:\n%s", r.log[len(r.log)-1], diff, r.replay, strings.Join(r.log, "\n"))
}

// differ returns the first difference between the plugins' answers to qs, or "". The etcd
// plugin fails while etcd is away or has no leader: such a query is asked again.
func (r *run) differ(qs []query) string {
	for _, q := range qs {
		for attempt := 0; ; attempt++ {
			d, builtin, err := r.p.compare(q, true)
			if err == nil && builtin.Rcode == dns.RcodeServerFailure && !r.servfail && attempt < 100 {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if err != nil {
				return err.Error()
			}
			if builtin.Rcode == dns.RcodeServerFailure && !r.servfail {
				return fmt.Sprintf("%s %s: SERVFAIL from the etcd plugin for 5 s", q.name, dns.TypeToString[q.qtype])
			}
			r.queries++
			if len(builtin.Answer) > 0 {
				r.answered++
			}
			if d != "" {
				return fmt.Sprintf("%s %s: %s", q.name, dns.TypeToString[q.qtype], d)
			}
			break
		}
	}
	return ""
}

// divergences returns etcdsd's count of divergences found for the run's zone.
func (r *run) divergences() float64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "coredns_etcdsd_divergences_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "prefix" && l.GetValue() == r.zone {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// issueCases are the three writes of issue 10 that lost events: a del --prefix of three
// instances, a lease with three keys revoked, a transaction of 30 puts. Besides the same
// answers as the etcd plugin, each must leave the answer users expect.
func (r *run) issueCases() {
	r.t.Helper()
	web := []string{"_tcp/_web/web-server01", "_tcp/_web/web-server02", "_tcp/_web/web-server03"}
	for i, k := range web {
		v := fmt.Sprintf(`{"host":"1.1.1.%d","port":80}`, i+1)
		r.do("put", func(ctx context.Context) error { _, err := r.e.cli.Put(ctx, r.zone+"/"+k, v); return err })
		r.keys[k] = true
		r.note("put %s %s", k, v)
	}
	r.compare(web)
	r.do("del --prefix", func(ctx context.Context) error {
		_, err := r.e.cli.Delete(ctx, r.zone+"/_tcp/_web/", clientv3.WithPrefix())
		return err
	})
	for _, k := range web {
		delete(r.keys, k)
	}
	r.note("del --prefix %s/_tcp/_web/", r.zone)
	r.compare(web)
	r.expect("_web._tcp.example.local.", dns.TypeSRV, dns.RcodeNameError, 0)

	var id clientv3.LeaseID
	r.do("grant", func(ctx context.Context) error {
		l, err := r.e.cli.Grant(ctx, 3600)
		if err == nil {
			id = l.ID
		}
		return err
	})
	db := []string{"_tcp/_db/db1", "_tcp/_db/db2", "_tcp/_db/dbinfo"}
	for i, v := range []string{`{"host":"10.60.0.1","port":5432}`, `{"host":"10.60.0.2","port":5432}`, `{"text":"primary db1"}`} {
		r.do("put", func(ctx context.Context) error {
			_, err := r.e.cli.Put(ctx, r.zone+"/"+db[i], v, clientv3.WithLease(id))
			return err
		})
		r.keys[db[i]] = true
	}
	r.note("lease %x on the _db instances and their TXT", id)
	r.expect("_db._tcp.example.local.", dns.TypeSRV, dns.RcodeSuccess, 2)
	r.do("revoke", func(ctx context.Context) error { _, err := r.e.cli.Revoke(ctx, id); return err })
	r.note("revoke %x", id)
	for _, k := range db {
		delete(r.keys, k)
	}
	r.compare(db)
	r.expect("_db._tcp.example.local.", dns.TypeTXT, dns.RcodeNameError, 0)

	var ops []clientv3.Op
	var churn []string
	for i := range 30 {
		k := fmt.Sprintf("churn/k%d", i)
		ops = append(ops, clientv3.OpPut(r.zone+"/"+k, fmt.Sprintf(`{"host":"10.61.0.%d"}`, i+1)))
		churn = append(churn, k)
		r.keys[k] = true
	}
	r.do("txn", func(ctx context.Context) error { _, err := r.e.cli.Txn(ctx).Then(ops...).Commit(); return err })
	r.note("txn of 30 puts below churn")
	r.compare(churn)
	r.expect("churn.example.local.", dns.TypeA, dns.RcodeSuccess, 30)
}

// expect asks etcdsd alone and checks the rcode and the number of answers.
func (r *run) expect(name string, qtype uint16, rcode, answers int) {
	r.t.Helper()
	r.barrier()
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.SetEdns0(4096, false)
	got, err := dns.Exchange(m, r.p.ours)
	if err != nil {
		r.t.Fatal(err)
	}
	if got.Rcode != rcode || len(got.Answer) != answers {
		r.t.Errorf("%s %s: want %s with %d answers, got %s with %v", name, dns.TypeToString[qtype], dns.RcodeToString[rcode], answers, dns.RcodeToString[got.Rcode], got.Answer)
	}
}
