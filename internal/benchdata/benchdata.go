// Package benchdata makes the benchmark data set: services with one to five instances
// under example.local, as etcd records, as a zone file with the same answers for the
// file plugin, and as a query mix.
package benchdata

import (
	"context"
	"fmt"
	"math/rand"
	"strings"

	"github.com/etcdsd/etcdsd/internal/devetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Origin is the zone of the data set.
const Origin = "example.local."

// Record is one etcd key and value; Leased records are put under a lease by loaders that
// have one.
type Record struct {
	Key, Value string
	Leased     bool
}

type instance struct {
	name, ip string
	v6       bool
}

type service struct {
	name      string
	instances []instance
	leased    bool
}

func services(n int) []service {
	out := make([]service, n)
	for i := range out {
		s := service{name: fmt.Sprintf("_svc%06d._tcp.%s", i, Origin), leased: i%10 == 0}
		for k := range 1 + i%5 {
			in := instance{name: fmt.Sprintf("inst%d.%s", k, s.name)}
			if i%5 == 4 {
				// Three groups: a service number past 0xffff does not fit one.
				in.ip, in.v6 = fmt.Sprintf("2001:db8::%x:%x:%x", i>>16, i&0xffff, k), true
			} else {
				// Unique per instance: the etcd plugin folds equal addresses into one A.
				in.ip = fmt.Sprintf("%d.%d.%d.%d", 10+k, (i>>16)&255, (i>>8)&255, i&255)
			}
			s.instances = append(s.instances, in)
		}
		out[i] = s
	}
	return out
}

// Records returns the etcd records of n services under path.
func Records(path string, n int) []Record {
	var out []Record
	for _, s := range services(n) {
		for _, in := range s.instances {
			out = append(out, Record{
				Key:    path + "/" + reverse(in.name),
				Value:  fmt.Sprintf(`{"host":%q,"port":8080}`, in.ip),
				Leased: s.leased,
			})
		}
	}
	return out
}

// ZoneFile returns a zone with the answers the etcd plugin gives for Records: per service
// SRV records (weights split as the etcd plugin splits them), the instances' addresses, and
// the addresses at the service name.
func ZoneFile(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n@ 300 IN SOA ns.dns.%s hostmaster.%s 1 7200 1800 86400 30\n@ 300 IN NS ns.dns.%s\nns.dns 300 IN A 127.0.0.1\n",
		Origin, Origin, Origin, Origin)
	for _, s := range services(n) {
		weight := 100 / len(s.instances)
		for _, in := range s.instances {
			typ := "A"
			if in.v6 {
				typ = "AAAA"
			}
			fmt.Fprintf(&b, "%s 300 IN SRV 10 %d 8080 %s\n", s.name, weight, in.name)
			fmt.Fprintf(&b, "%s 300 IN %s %s\n", in.name, typ, in.ip)
			fmt.Fprintf(&b, "%s 300 IN %s %s\n", s.name, typ, in.ip)
		}
	}
	return b.String()
}

// Query is one question of the mix.
type Query struct {
	Name string
	Type string // "A", "AAAA", "SRV" or "TXT"
}

// Queries returns the mix, 6.3 distinct questions per service: for every service an SRV
// query, an address query of its family and a TXT query (which has no data: NODATA), an
// address query for each of its instances, and one name in every 30 that does not exist.
func Queries(n int) []Query {
	var out []Query
	for i, s := range services(n) {
		out = append(out, Query{s.name, "SRV"}, Query{s.name, family(s.instances[0])}, Query{s.name, "TXT"})
		for _, in := range s.instances {
			out = append(out, Query{in.name, family(in)})
		}
		if i%5 == 0 {
			out = append(out, Query{fmt.Sprintf("_nothere%06d._tcp.%s", i, Origin), "A"})
		}
	}
	return out
}

// Zipf returns count questions over the instance names of n services (about 3n names),
// their address queries drawn with Zipf's law of exponent s: the k-th most asked name is
// asked about 1/k^s as often as the first. The ranks are spread over the zone by a fixed
// permutation, so that the popular names are not neighbours in the tree.
func Zipf(n, count int, s float64, seed int64) []Query {
	var names []Query
	for _, sv := range services(n) {
		for _, in := range sv.instances {
			names = append(names, Query{in.name, family(in)})
		}
	}
	r := rand.New(rand.NewSource(seed))
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	z := rand.NewZipf(r, s, 1, uint64(len(names)-1))
	out := make([]Query, count)
	for i := range out {
		out[i] = names[z.Uint64()]
	}
	return out
}

func family(in instance) string {
	if in.v6 {
		return "AAAA"
	}
	return "A"
}

func reverse(name string) string {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.Join(labels, "/")
}

// Load puts the records below path into etcd, devetcd.MaxTxnOps to a transaction, those marked leased
// under one lease of an hour per service, unless path holds as many keys already. It
// returns the number of records.
func Load(cli *clientv3.Client, path string, records []Record) (int, error) {
	ctx := context.Background()
	if have, err := cli.Get(ctx, path+"/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err == nil && have.Count == int64(len(records)) {
		return len(records), nil
	}
	leases := map[string]clientv3.LeaseID{}
	ops := make([]clientv3.Op, 0, len(records))
	for _, r := range records {
		var opts []clientv3.OpOption
		if r.Leased {
			svc := r.Key[:strings.LastIndex(r.Key, "/")]
			id, ok := leases[svc]
			if !ok {
				l, err := cli.Grant(ctx, 3600)
				if err != nil {
					return 0, err
				}
				id, leases[svc] = l.ID, l.ID
			}
			opts = append(opts, clientv3.WithLease(id))
		}
		ops = append(ops, clientv3.OpPut(r.Key, r.Value, opts...))
	}
	if err := devetcd.Commit(ctx, cli, ops); err != nil {
		return 0, err
	}
	return len(records), nil
}
