package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/skydns"

	"go.etcd.io/etcd/api/v3/authpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// When etcd refuses a range, etcdsdctl reads what the user may do from its roles: etcd
// lets a user that is not root read its own user (UserGet) and each role it has
// (RoleGet), 3.4 and 3.7 alike (TestReadOnlyRole). It then reads the parts of the range the
// roles grant and names the parts they do not, instead of failing on the whole range.

// access is what the roles of an etcd user let it read and write.
type access struct {
	user        string
	roles       []string
	read, write []interval // merged, in key order
}

// interval is the keys from start up to end, end excluded; an empty end stands for every
// key from start on, as a permission that etcdctl grants with --from-key has it. A single
// key k is [k, k+"\x00").
type interval struct{ start, end string }

// spanInterval returns the keys of s as an interval.
func spanInterval(s index.Span) interval {
	if s.End == "" {
		return interval{s.Start, s.Start + "\x00"}
	}
	return interval{s.Start, s.End}
}

// span returns iv, which is bounded, as the span that etcd reads it with: a key alone
// where iv holds one key.
func (iv interval) span() index.Span {
	if iv.end == iv.start+"\x00" {
		return index.Span{Start: iv.start}
	}
	return index.Span{Start: iv.start, End: iv.end}
}

// endBefore reports whether the end a comes before the end b.
func endBefore(a, b string) bool { return a != "" && (b == "" || a < b) }

// permInterval returns the keys a permission of a role covers, as etcd's auth store
// reads it: an empty range end for the key alone, "\x00" for every key from it on.
func permInterval(p *authpb.Permission) interval {
	switch end := string(p.RangeEnd); end {
	case "":
		return interval{string(p.Key), string(p.Key) + "\x00"}
	case "\x00":
		return interval{string(p.Key), ""}
	default:
		return interval{string(p.Key), end}
	}
}

// merge returns ivs sorted, with the intervals that overlap or touch joined: etcd allows
// a range that the permissions of a user's roles cover together.
func merge(ivs []interval) []interval {
	slices.SortFunc(ivs, func(a, b interval) int { return strings.Compare(a.start, b.start) })
	var out []interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && (out[n-1].end == "" || out[n-1].end >= iv.start) {
			if endBefore(out[n-1].end, iv.end) || iv.end == "" {
				out[n-1].end = iv.end
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// split returns the parts of the bounded interval s that perms (merged) cover, and the
// parts they do not, each in key order.
func split(s interval, perms []interval) (in, out []interval) {
	at := s.start
	for _, p := range perms {
		if at == s.end || s.end <= p.start {
			break
		}
		if p.end != "" && p.end <= at {
			continue // p ends before at
		}
		if at < p.start {
			out = append(out, interval{at, p.start})
			at = p.start
		}
		end := s.end
		if endBefore(p.end, end) {
			end = p.end
		}
		in = append(in, interval{at, end})
		at = end
	}
	if at < s.end {
		out = append(out, interval{at, s.end})
	}
	return in, out
}

// errNoUser is why the access of a client that names no user cannot be read.
var errNoUser = errors.New("neither --user nor a client certificate (--cert) names the etcd user")

// lookupAccess reads what user's roles grant.
func lookupAccess(ctx context.Context, cli *clientv3.Client, user string) (*access, error) {
	if user == "" {
		return nil, errNoUser
	}
	u, err := cli.UserGet(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", user, err)
	}
	a := &access{user: user, roles: u.Roles}
	for _, role := range u.Roles {
		if role == "root" { // etcd's own: every key, and no permission to list
			a.read = append(a.read, interval{"", ""})
			a.write = append(a.write, interval{"", ""})
			continue
		}
		r, err := cli.RoleGet(ctx, role)
		if err != nil {
			return nil, fmt.Errorf("reading role %s of user %s: %w", role, user, err)
		}
		for _, p := range r.Perm {
			iv := permInterval(p)
			if p.PermType == authpb.Permission_READ || p.PermType == authpb.Permission_READWRITE {
				a.read = append(a.read, iv)
			}
			if p.PermType == authpb.Permission_WRITE || p.PermType == authpb.Permission_READWRITE {
				a.write = append(a.write, iv)
			}
		}
	}
	a.read, a.write = merge(a.read), merge(a.write)
	return a, nil
}

// who names the user and its roles: "user coredns (role coredns-example)".
func (a *access) who() string {
	switch len(a.roles) {
	case 0:
		return "user " + a.user + " (no role)"
	case 1:
		return "user " + a.user + " (role " + a.roles[0] + ")"
	default:
		return "user " + a.user + " (roles " + strings.Join(a.roles, ", ") + ")"
	}
}

// quoteSpan prints s with its keys quoted (skydns.Quote), as every key etcdsdctl prints.
func quoteSpan(s index.Span) string {
	if s.End == "" {
		return skydns.Quote(s.Start)
	}
	return "[" + skydns.Quote(s.Start) + ", " + skydns.Quote(s.End) + ")"
}

// spans joins the spans of ivs for a message: "/skydns, [/skydns/, /skydns/local/)".
func spans(ivs []interval) string {
	s := make([]string, len(ivs))
	for i, iv := range ivs {
		s[i] = quoteSpan(iv.span())
	}
	return strings.Join(s, ", ")
}

// userName returns the etcd user the client authenticates as: --user's name, or the
// common name of the client certificate, which etcd takes for the user when it checks
// client certificates and no password is given; "" when neither names one.
func (g *global) userName() string {
	if g.user != "" {
		name, _, _ := strings.Cut(g.user, ":")
		return name
	}
	if g.cert == "" {
		return ""
	}
	b, err := os.ReadFile(g.cert)
	if err != nil {
		return ""
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return ""
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return c.Subject.CommonName
}
