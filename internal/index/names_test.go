package index

import (
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestNamePath(t *testing.T) {
	for _, tc := range []struct{ root, key, want string }{
		{bRoot, bRoot + "/www/x1", ""},
		{bRoot, bRoot, ""},
		{bRoot, bRoot + "/MixedCase", bRoot + "/mixedcase"},
		{bRoot, bRoot + "/photos/192.0.2.61", bRoot + "/photos/61/2/0/192"},
		{bRoot, bRoot + "/A.B/c", bRoot + "/b/a/c"},
		// Escaped as a query spells it once off the wire: a\ b.
		{bRoot, bRoot + "/a b", bRoot + `/a\ b`},
		// Not a DNS name: no query reaches it.
		{bRoot, bRoot + "/" + strings.Repeat("x", 64) + "Y", ""},
		{"/", "/Local/x", "/local/x"},
		// Keys that stand for no name: an empty label, a backslash.
		{bRoot, bRoot + "/trail.", ""},
		{bRoot, bRoot + "/a..b", ""},
		{bRoot, bRoot + `/back\slash`, ""},
		// The zone's own labels are not rewritten: a '/' in them is the operator's.
		{"/skydns/arpa/in-addr/192/0/2/128/27", "/skydns/arpa/in-addr/192/0/2/128/27/Host", "/skydns/arpa/in-addr/192/0/2/128/27/host"},
	} {
		if got := namePath(tc.root, tc.key); got != tc.want {
			t.Errorf("namePath(%q, %q) = %q, want %q", tc.root, tc.key, got, tc.want)
		}
	}
}

// Entries found under a name path other than their key follow every write: a put, a put
// that replaces it, a delete, and a list that drops it.
func TestBuilderKeepsNamePaths(t *testing.T) {
	names := func(b *Builder) string {
		var out []string
		b.names.Ascend(func(e *entry) bool {
			out = append(out, strings.TrimPrefix(e.name(), bRoot)+"="+e.key)
			return true
		})
		return strings.Join(out, " ")
	}
	found := func(b *Builder, path string) int {
		f, _ := b.Snapshot(0, nil).lookup(bRoot+path, true, 10)
		return len(f)
	}
	b := NewBuilder(bRoot)
	l := listAt(b, 1)
	l.page(nil)
	l.done([]Span{ZoneSpan(bRoot)})
	steps := []struct {
		events []*clientv3.Event
		want   string
		path   string // looked up below ...
		n      int    // ... finds n entries
	}{
		{[]*clientv3.Event{putEv("/Web", 2), putEv("/b/1.2", 2), putEv("/plain", 2)}, "/b/2/1=/b/1.2 /web=/Web", "/web", 1},
		{[]*clientv3.Event{putEv("/Web", 3)}, "/b/2/1=/b/1.2 /web=/Web", "/b/2/1", 1},
		// A name between a key's levels exists, and holds no record.
		{nil, "/b/2/1=/b/1.2 /web=/Web", "/b/2", 0},
		// Below its own key and under its name path at once: read once.
		{[]*clientv3.Event{badPut("/b/1.2", 4)}, "/b/2/1=/b/1.2 /web=/Web", "/b", 1},
		{[]*clientv3.Event{delEv("/Web", 5)}, "/b/2/1=/b/1.2", "/web", 0},
	}
	for i, s := range steps {
		b.Apply(0, s.events)
		if got := names(b); got != s.want {
			t.Errorf("step %d: names %q, want %q", i, got, s.want)
		}
		if got := found(b, s.path); got != s.n {
			t.Errorf("step %d: lookup %s found %d, want %d", i, s.path, got, s.n)
		}
		if exists := b.Snapshot(0, nil).exists(bRoot + s.path); exists != (s.n > 0 || strings.HasPrefix("/b/2/1", s.path)) {
			t.Errorf("step %d: %s exists: %v", i, s.path, exists)
		}
	}
	l = listAt(b, 6)
	l.page(nil)
	l.done([]Span{ZoneSpan(bRoot)})
	if got := names(b); got != "" {
		t.Errorf("after an empty list: names %q", got)
	}
}
