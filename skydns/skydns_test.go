package skydns

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	const key = "/skydns/local/example/x"
	tests := []struct {
		key, value string
		reason     string // "" when the value is valid
	}{
		{key, `{"host":"10.0.0.1","port":80}`, ""},
		{key, `{"host":"2001:db8::1"}`, ""},
		{key, `{"host":"www.example.org."}`, ""},
		{key, `{"host":"_svc-1.example.org"}`, ""},
		{key, `{"text":"only text"}`, ""},
		{key, `{}`, ""},
		{key, `{"host":"10.0.0.1","port":-1}`, ""}, // no port: addresses only, as in the etcd plugin
		{key, `{"host":"10.0.0.1","port":65535,"priority":65535,"weight":65535}`, ""},
		{key, `{"host":"10.0.0.1","unknown":{"nested":[1,2]}}`, ""},
		{key, `{"text":"` + strings.Repeat("t", MaxText) + `"}`, ""},

		{key, `{"host":`, ReasonInvalidJSON},
		{key, ``, ReasonInvalidJSON},
		{key, `not json`, ReasonInvalidJSON},
		{key, `[1,2]`, ReasonNotObject},
		{key, `"a string"`, ReasonNotObject},
		{key, `null`, ReasonNotObject},
		{key, `42`, ReasonNotObject},
		{key, `{"port":"80"}`, ReasonWrongType},
		{key, `{"host":42}`, ReasonWrongType},
		{key, `{"ttl":-5}`, ReasonWrongType},
		{key, `{"mail":"yes"}`, ReasonWrongType},
		{key, `{"host":"999.1.1.1"}`, ReasonInvalidHost},
		{key, `{"host":"has space.example.org"}`, ReasonInvalidHost},
		{key, `{"host":"a..b"}`, ReasonInvalidHost},
		{key, `{"host":"` + strings.Repeat("a", 64) + `.org"}`, ReasonInvalidHost},
		{key, `{"host":"` + strings.Repeat("abcdefghi.", 26) + `org"}`, ReasonInvalidHost},
		{key, `{"host":"10.0.0.1","port":65536}`, ReasonOutOfRange},
		{key, `{"host":"10.0.0.1","port":-2}`, ReasonOutOfRange},
		{key, `{"host":"10.0.0.1","priority":-1}`, ReasonOutOfRange},
		{key, `{"host":"10.0.0.1","weight":70000}`, ReasonOutOfRange},
		{key, `{"text":"` + strings.Repeat("t", MaxText+1) + `"}`, ReasonTooLarge},
		{"/skydns/local/example//x", `{"host":"10.0.0.1"}`, ReasonInvalidKey},
		{"/", `{"host":"10.0.0.1"}`, ReasonInvalidKey},
		{"x", `{"host":"10.0.0.1"}`, ReasonInvalidKey},
		{"/skydns", `{"host":"10.0.0.1"}`, ""},                   // the path's own key: the root name
		{"/skydns/local/example/a.b", `{"host":"10.0.0.1"}`, ""}, // two labels of the name
		{"//0..", `{}`, ReasonInvalidKey},                        // found by FuzzDecodeService
		{"/skydns/local/example/a..b", `{"host":"10.0.0.1"}`, ReasonInvalidKey},
		{"/skydns/local/example/.a", `{"host":"10.0.0.1"}`, ReasonInvalidKey},
		{"/skydns/local/example/a." + strings.Repeat("k", 64), `{"host":"10.0.0.1"}`, ReasonInvalidKey},
		{"/skydns/local/example/" + strings.Repeat("k", 64), `{"host":"10.0.0.1"}`, ReasonInvalidKey},
	}
	for _, tc := range tests {
		s, err := Decode(tc.key, []byte(tc.value))
		var iv *InvalidError
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%.60s: unexpected error %v", tc.value, err)
		case tc.reason == "" && s.Key != tc.key:
			t.Errorf("%.60s: want the key set, got %+v", tc.value, s)
		case tc.reason != "" && !errors.As(err, &iv):
			t.Errorf("%.60s: want a %s error, got %v", tc.value, tc.reason, err)
		case tc.reason != "" && iv.Reason != tc.reason:
			t.Errorf("%.60s: want reason %s, got %s (%v)", tc.value, tc.reason, iv.Reason, err)
		}
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct{ prefix, name, key string }{
		{"/skydns", "web-server01._web._tcp.example.local", "/skydns/local/example/_tcp/_web/web-server01"},
		{"skydns", "Web.Example.Local.", "/skydns/local/example/web"},
		{"/skydns/", "a.b", "/skydns/b/a"},
		{"/", "a.b", "/b/a"},
		{"/skydns", ".", ""},
		{"/skydns", "a..b", ""},
		{"/skydns", `a\/b.example.local`, ""},
		{"/skydns", "*.example.local", ""},
		{"/skydns", "x.any.example.local", ""},
		{"/skydns", strings.Repeat("k", 64) + ".local", ""},
	} {
		key, err := Key(tc.prefix, tc.name)
		if key != tc.key || (err == nil) != (tc.key != "") {
			t.Errorf("Key(%q, %q) = %q, %v; want %q", tc.prefix, tc.name, key, err, tc.key)
		}
	}
}
