package etcdsd

import (
	"testing"

	"github.com/etcdsd/etcdsd/skydns"
)

// The checks themselves are skydns's; the plugin adds the etcd plugin's default priority.
func TestDecodeServiceDefaults(t *testing.T) {
	s, err := decodeService("/skydns/local/example/x", []byte(`{"host":"10.0.0.1","port":80}`))
	if err != nil || s.Priority != defaultPriority || s.Key != "/skydns/local/example/x" || s.Port != 80 {
		t.Fatalf("got %+v, %v; want priority %d, the key and port 80", s, err, defaultPriority)
	}
	s, _ = decodeService("/skydns/local/example/x", []byte(`{"host":"10.0.0.1","priority":7}`))
	if s.Priority != 7 {
		t.Errorf("priority %d, want the value's own 7", s.Priority)
	}
	if _, err := decodeService("/skydns/local/example/x", []byte(`{"port":"80"}`)); skydns.Reason(err) != skydns.ReasonWrongType {
		t.Errorf("want a wrong_type error, got %v", err)
	}
}

func TestKeyRange(t *testing.T) {
	for _, tc := range []struct{ prefix, start, end string }{
		{"skydns", "/skydns", "/skydns0"},
		{"/skydns/", "/skydns", "/skydns0"},
		{"/a/b", "/a/b", "/a/b0"},
		{"/", "/", "0"},
	} {
		if s, e := keyRange(tc.prefix); s != tc.start || e != tc.end {
			t.Errorf("keyRange(%q) = %q, %q; want %q, %q", tc.prefix, s, e, tc.start, tc.end)
		}
	}
}
