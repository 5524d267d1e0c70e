package index

import (
	"slices"
	"strings"

	"github.com/google/btree"
	"github.com/miekg/dns"
)

// namePath returns the key path under which queries find key, when that is not key
// itself, or "". A query's name is lowercased and split at its dots before it becomes a
// path, so two kinds of key are unreachable by their own path:
//   - a label with capitals (/skydns/org/example/MixedCase): names compare without regard
//     to case (RFC 4343), so MixedCase.example.org must find it;
//   - a label with a dot (MinIO writes /skydns/com/example/minio/photos/192.0.2.61): the
//     SRV target built from the key, 192.0.2.61.photos.minio.example.com., has four labels
//     where the key has one, and must resolve to the key's address.
//
// The path is the one a client's query for the name built from the key (msg.Domain)
// reads: the name as it goes over the wire, in presentation form, lowercased. A key whose
// name is not a DNS name (a label over 63 octets) has none.
func namePath(root, key string) string {
	below := root + "/"
	if root == "/" {
		below = root
	}
	rel, ok := strings.CutPrefix(key, below)
	if !ok || plainPath(rel) || strings.Contains(rel, `\`) {
		return "" // a backslash in a key is a character, not an escape: no name holds it
	}
	labels := strings.Split(rel, "/")
	for _, l := range labels {
		if strings.HasPrefix(l, ".") || strings.HasSuffix(l, ".") || strings.Contains(l, "..") {
			return "" // an empty label: not a name (skydns reports invalid_key)
		}
	}
	slices.Reverse(labels)
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(dns.Fqdn(strings.Join(labels, ".")), buf, 0, nil, false)
	if err != nil {
		return ""
	}
	name, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return ""
	}
	labels = dns.SplitDomainName(strings.ToLower(name))
	slices.Reverse(labels)
	if p := below + strings.Join(labels, "/"); p != key {
		return p
	}
	return ""
}

// levelAt reports whether path is the name path of one of key's levels below root: key
// itself or one of its ancestors.
func levelAt(root, key, path string) bool {
	for k := key; len(k) > len(root); k = k[:strings.LastIndexByte(k, '/')] {
		p := namePath(root, k)
		if p == "" {
			p = k
		}
		if p == path {
			return true
		}
	}
	return false
}

// plainPath reports whether every label of rel is one lowercase DNS label as a query
// spells it, so that the key is found under its own path: the fast path for nearly every
// key.
func plainPath(rel string) bool {
	for i := 0; i < len(rel); i++ {
		c := rel[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '/' || c == '*') {
			return false
		}
	}
	return true
}

// nameLess orders the entries found under a name path by that path, then by key.
func nameLess(a, b *entry) bool {
	if a.name() != b.name() {
		return a.name() < b.name()
	}
	return a.key < b.key
}

func newNameTree() *btree.BTreeG[*entry] { return btree.NewG(8, nameLess) }
