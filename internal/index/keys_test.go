package index

import (
	"testing"

	"github.com/etcdsd/etcdsd/skydns"
)

// The checks themselves are skydns's; the plugin adds the etcd plugin's default priority.
func TestDecodeServiceDefaults(t *testing.T) {
	s, err := decodeService([]byte(`{"host":"10.0.0.1","port":80}`))
	if err != nil || s.Priority != defaultPriority || s.Port != 80 {
		t.Fatalf("got %+v, %v; want priority %d and port 80", s, err, defaultPriority)
	}
	s, _ = decodeService([]byte(`{"host":"10.0.0.1","priority":7}`))
	if s.Priority != 7 {
		t.Errorf("priority %d, want the value's own 7", s.Priority)
	}
	if _, err := decodeService([]byte(`{"port":"80"}`)); skydns.Reason(err) != skydns.ReasonWrongType {
		t.Errorf("want a wrong_type error, got %v", err)
	}
}

func TestZoneSpans(t *testing.T) {
	for _, tc := range []struct{ prefix, root, end string }{
		{"skydns", "/skydns", "/skydns0"},
		{"/skydns/", "/skydns", "/skydns0"},
		{"/a/b", "/a/b", "/a/b0"},
		{"/", "/", "0"},
	} {
		root := RootKey(tc.prefix)
		if s := ZoneSpan(root); root != tc.root || s != (Span{tc.root, tc.end}) {
			t.Errorf("prefix %q: root %q, ZoneSpan %v; want %q, [%s, %s)", tc.prefix, root, s, tc.root, tc.root, tc.end)
		}
	}
	// What a role granting "/skydns/local/example/" with --prefix may read, and the apex key.
	below, apex := BelowSpans("/skydns/local/example")
	if below != (Span{"/skydns/local/example/", "/skydns/local/example0"}) || apex != (Span{"/skydns/local/example", ""}) {
		t.Errorf("BelowSpans: %v and %v", below, apex)
	}
	// Below the root lies every key but the root's own.
	if below, apex := BelowSpans("/"); below != (Span{"/\x00", "0"}) || apex != (Span{"/", ""}) {
		t.Errorf("BelowSpans(/): %v and %v", below, apex)
	}
}
