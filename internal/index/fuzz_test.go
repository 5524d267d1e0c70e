package index

import (
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/etcdsd/etcdsd/skydns"
	"github.com/miekg/dns"
)

// A value decodeService accepts gives records that pack, and at a key skydns.CheckKey
// accepts, SRV records named after the key too.
func FuzzDecodeService(f *testing.F) {
	for _, v := range []string{`{"host":"1.1.1.1","port":80}`, `{"host":"2001:db8::1","ttl":60}`, `{"text":"hello world"}`,
		`{"host":"www.example.local","priority":20,"weight":5}`, `{"host":"mx.example.local","mail":true}`, `{"host":"10.0.0.1","targetstrip":1,"group":"g"}`} {
		f.Add("/h/local/example/x", []byte(v))
	}
	f.Add("/h/local/example/x", []byte(`{"host":"999.1.1.1","port":70000,"text":"`+strings.Repeat("t", 300)+`"}`))
	f.Add("/h/local/example//x", []byte(`{"host":"10.0.0.1"}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		s, err := decodeService(value)
		if err != nil {
			return
		}
		s.Key = key
		if s.Port < -1 || s.Port > 65535 || s.Priority < 1 || s.Priority > 65535 || s.Weight < 0 || s.Weight > 65535 {
			t.Fatalf("accepted out-of-range numbers: %+v", s)
		}
		owner := "x.example.local."
		rrs := []dns.RR{s.NewTXT(owner), s.NewSRV(owner, 1), s.NewMX(owner)}
		if s.Host != "" {
			rrs = append(rrs, s.NewCNAME(owner, s.Host))
		}
		// With an IP host, the SRV target is the key's name.
		if skydns.CheckKey(key) == nil {
			synthesized := s
			synthesized.Host = msg.Domain(s.Key)
			rrs = append(rrs, synthesized.NewSRV(owner, 1))
		}
		for _, rr := range rrs {
			m := new(dns.Msg).SetQuestion(owner, dns.TypeANY)
			m.Answer = []dns.RR{rr}
			if _, err := m.Pack(); err != nil {
				t.Fatalf("record from accepted value %q at %q does not pack: %v", value, key, err)
			}
		}
	})
}
