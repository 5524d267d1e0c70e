package directive

import (
	"slices"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
)

func TestRegisterPlacesEtcdsdAfterEtcd(t *testing.T) {
	if err := Register(); err != nil {
		t.Fatal(err)
	}
	if err := Register(); err != nil {
		t.Fatal(err)
	}
	d := dnsserver.Directives
	i := slices.Index(d, "etcd")
	if i < 0 || i+1 >= len(d) || d[i+1] != "etcdsd" {
		t.Fatalf("want etcdsd right after etcd, got %v", d)
	}
	if n := len(slices.DeleteFunc(slices.Clone(d), func(s string) bool { return s != "etcdsd" })); n != 1 {
		t.Fatalf("want etcdsd once, got %d times", n)
	}
}

func TestInsertAfterMissing(t *testing.T) {
	if _, err := insertAfter([]string{"a", "b"}, "etcd", "etcdsd"); err == nil {
		t.Fatal("want an error when etcd is missing")
	}
}
