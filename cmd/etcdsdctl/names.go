package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/miekg/dns"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// target is what the NAME or KEY argument of check and rm stands for.
type target struct {
	arg  string
	name string // the DNS name, fully qualified; "" when a key was given
	key  string // the name's key (its labels reversed and lowercased), or the key given
}

// parseTarget reads arg: a key under prefix when it starts with "/", else a DNS name.
// A key is taken as it is, for the keys that no name leads to: a label with a dot or a
// wildcard, an empty label.
func parseTarget(prefix, arg string) (target, error) {
	root := index.RootKey(prefix)
	if strings.HasPrefix(arg, "/") {
		if !index.Within(arg, root) {
			return target{}, fmt.Errorf("key %s is not under --path %s", skydns.Quote(arg), root)
		}
		return target{arg: arg, key: arg}, nil
	}
	name := dns.Fqdn(arg)
	key, err := skydns.Key(prefix, name)
	if err == nil {
		return target{arg: arg, name: name, key: key}, nil
	}
	if _, ok := dns.IsDomainName(name); ok && name != "." {
		labels := dns.SplitDomainName(strings.ToLower(name))
		for _, l := range labels {
			why := ""
			switch {
			case l == "*" || l == "any":
				why = "is a wildcard in lookups, so it stands for no one key"
			case strings.Contains(l, "/"):
				why = `holds a "/", which in a key separates labels`
			case strings.Contains(l, `\`):
				why = `holds an escape (\), which no key spells`
			default:
				continue
			}
			slices.Reverse(labels)
			return target{}, fmt.Errorf("%s: label %q %s; to name a key as it is, give the key (such as %s)",
				skydns.Quote(name), l, why, skydns.Quote(path.Join(append([]string{root}, labels...)...)))
		}
	}
	return target{}, err
}

// keys returns the keys t stands for: for a key, the key; for a name, every spelling of
// its key under root with letters of any case (spellings), as etcdsd finds records for
// a name whatever the case of the key's letters (RFC 4343).
func (t target) keys(ctx context.Context, cli *clientv3.Client, user, root string) ([]string, error) {
	if t.name == "" {
		return []string{t.key}, nil
	}
	return spellings(ctx, cli, user, root, t.key)
}

// spellings returns the keys under root that are key (lowercase, below root) or spell it
// with capitals, and that hold a record or have keys below them, in key order; key alone
// when none does. Where the user may read only parts of root's keys, it looks in those;
// where it may read none that its roles say, it returns key alone, which the read that
// follows reports as not read.
//
// It walks etcd's key order: the first key of a prefix says how far the keys there spell
// key, and a capital in it is the only place where another spelling, the lowercase letter,
// sorts after it. It asks one key per branch, not one per key.
func spellings(ctx context.Context, cli *clientv3.Client, user, root, key string) ([]string, error) {
	base := root + "/"
	if root == "/" {
		base = root
	}
	t, ok := strings.CutPrefix(key, base)
	if !ok {
		return []string{key}, nil
	}
	everything := []interval{spanInterval(index.Below(root))}
	found, err := spell(ctx, cli, base, t, everything)
	if errors.Is(err, rpctypes.ErrPermissionDenied) {
		acc, aerr := lookupAccess(ctx, cli, user)
		if aerr != nil {
			return []string{key}, nil
		}
		readable, _ := split(everything[0], acc.read)
		found, err = spell(ctx, cli, base, t, readable)
	}
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return []string{key}, nil
	}
	slices.Sort(found)
	return found, nil
}

// spell returns the spellings under base of the lowercase t that hold a record or have
// keys below them, among the keys in within (sorted, disjoint).
func spell(ctx context.Context, cli *clientv3.Client, base, t string, within []interval) ([]string, error) {
	// first returns the first key in within that starts with p.
	first := func(p string) (string, bool, error) {
		r := interval{p, clientv3.GetPrefixRangeEnd(p)}
		for _, w := range within {
			lo, hi := max(r.start, w.start), r.end
			if endBefore(w.end, hi) {
				hi = w.end
			}
			if hi <= lo {
				continue
			}
			resp, err := cli.Get(ctx, lo, clientv3.WithRange(hi), clientv3.WithKeysOnly(), clientv3.WithLimit(1))
			if err != nil {
				return "", false, fmt.Errorf("reading %s: %w", quoteSpan(index.Span{Start: lo, End: hi}), err)
			}
			if len(resp.Kvs) > 0 {
				return string(resp.Kvs[0].Key), true, nil
			}
		}
		return "", false, nil
	}
	var found []string
	// walk looks below p, the base and a spelling of t[:i].
	var walk func(p string, i int) error
	walk = func(p string, i int) error {
		k, ok, err := first(p)
		if err != nil || !ok {
			return err
		}
		k = k[len(base):]
		m := i
		for m < len(t) && m < len(k) && foldByte(k[m]) == t[m] {
			m++
		}
		// Keys that spell t beyond i as k does up to a capital, and the letter in lowercase
		// there, sort after k: look there. The capital's keys are k's.
		for j := i; j < m; j++ {
			if c := k[j]; 'A' <= c && c <= 'Z' {
				if err := walk(base+k[:j]+string(c+'a'-'A'), j+1); err != nil {
					return err
				}
			}
		}
		if m == len(t) {
			// k spells t: a record, a key below one, or a sibling such as t-2 or t.x, which
			// sort before t's keys below it.
			spelled := base + k[:m]
			switch {
			case len(k) == m || k[m] == '/':
				found = append(found, spelled)
			case k[m] < '/':
				if _, ok, err := first(spelled + "/"); err != nil {
					return err
				} else if ok {
					found = append(found, spelled)
				}
			}
			return nil
		}
		// k leaves t at m: the spellings of t[m] that sort after k's byte there.
		for _, c := range cases(t[m]) {
			if m == len(k) || c > k[m] {
				if err := walk(base+k[:m]+string(c), m+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return found, walk(base, 0)
}

// foldByte returns c with an ASCII capital lowercased: DNS names compare so (RFC 4343).
func foldByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// cases returns the bytes that spell c in a name, in key order: a capital and c for a
// lowercase letter, else c.
func cases(c byte) []byte {
	if 'a' <= c && c <= 'z' {
		return []byte{c - 'a' + 'A', c}
	}
	return []byte{c}
}
