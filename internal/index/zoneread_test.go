package index

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/etcdsd/etcdsd/internal/index/indextest"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestReadZone reads a zone as the spans a role grants: the README's read-only role
// grants the keys below the zone, and perhaps the zone's own key.
func TestReadZone(t *testing.T) {
	const root = "/skydns/local/example"
	zone, below, apex := ZoneSpan(root), Below(root), Span{root, ""}
	errDown := errors.New("etcd away")
	for _, tc := range []struct {
		name    string
		root    string
		wide    bool
		refused []Span // spans that etcd refuses
		failed  []Span // spans whose read fails otherwise
		want    []Span
		reads   []Span
		err     error
	}{
		{name: "a role that reads the zone's range", root: root, wide: true, want: []Span{zone}, reads: []Span{zone}},
		{name: "a role of the keys below and the zone's key", root: root, wide: true, refused: []Span{zone}, want: []Span{below, apex}, reads: []Span{zone, below, apex}},
		{name: "a role of the keys below alone", root: root, wide: true, refused: []Span{zone, apex}, want: []Span{below}, reads: []Span{zone, below, apex}},
		{name: "a role of none of them", root: root, wide: true, refused: []Span{zone, below}, reads: []Span{zone, below}, err: rpctypes.ErrPermissionDenied},
		{name: "etcd away", root: root, wide: true, failed: []Span{zone}, want: []Span{zone}, reads: []Span{zone}, err: errDown},
		{name: "etcd away after the refusal", root: root, wide: true, refused: []Span{zone}, failed: []Span{apex}, reads: []Span{zone, below, apex}, err: errDown},
		{name: "not wide: no siblings counted", root: root, want: []Span{below, apex}, reads: []Span{below, apex}},
		{name: "the root of every key, refused", root: "/", refused: []Span{ZoneSpan("/")}, want: []Span{ZoneSpan("/")}, reads: []Span{ZoneSpan("/")}, err: rpctypes.ErrPermissionDenied},
	} {
		var reads []Span
		got, err := ReadZone(tc.root, tc.wide, func(s Span) error {
			reads = append(reads, s)
			switch {
			case slices.Contains(tc.refused, s):
				return fmt.Errorf("reading %v: %w", s, rpctypes.ErrPermissionDenied)
			case slices.Contains(tc.failed, s):
				return errDown
			}
			return nil
		})
		if !errors.Is(err, tc.err) || tc.err == nil && err != nil || !slices.Equal(got, tc.want) || !slices.Equal(reads, tc.reads) {
			t.Errorf("%s: spans %v, reads %v, error %v; want %v, %v, %v", tc.name, got, reads, err, tc.want, tc.reads, tc.err)
		}
	}
}

// TestCompare tells every difference between a page read from etcd and the index.
func TestCompare(t *testing.T) {
	const zone = "example.local."
	data := [][2]string{
		{"/h/local/example/a", `{"host":"10.0.0.1"}`},
		{"/h/local/example/b", `{"host":"10.0.0.2"}`},
		{"/h/local/example/c", `{"host":"10.0.0.3"}`},
	}
	s := memoryBuilder(t, zone, data).Snapshot(1, nil)
	etcd := indextest.New([][2]string{data[0], data[1], {"/h/local/example/d", `{}`}, {"/h/local/example-old/x", `{}`}})
	var kvs []*mvccpb.KeyValue
	for _, kv := range etcd {
		if string(kv.Key) == "/h/local/example/b" {
			kv.ModRevision = 9 // written again
		}
		kvs = append(kvs, kv)
	}
	var got []string
	s.Compare(kvs, "/h/local/example", "/h/local/example0", func(mark byte, key string) { got = append(got, string(mark)+key) })
	want := []string{"~/h/local/example/b", "-/h/local/example/c", "+/h/local/example/d"}
	if !slices.Equal(got, want) {
		t.Errorf("differences %q, want %q", got, want)
	}
}
