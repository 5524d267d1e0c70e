// Package tools pins the tools this repository builds and tests with: etcd's server and
// etcdctl of the release etcdsd is built against (3.7), and staticcheck. `make build`
// builds them from here (go build go.etcd.io/etcd/server/v3). They live in a module of
// their own so that none of them is a requirement of github.com/etcdsd/etcdsd, and so of
// a CoreDNS build that adds etcdsd.
package tools
