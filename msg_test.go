package etcdsd

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeService(t *testing.T) {
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
		{key, `{"text":"` + strings.Repeat("t", maxText) + `"}`, ""},

		{key, `{"host":`, reasonInvalidJSON},
		{key, ``, reasonInvalidJSON},
		{key, `not json`, reasonInvalidJSON},
		{key, `[1,2]`, reasonNotObject},
		{key, `"a string"`, reasonNotObject},
		{key, `null`, reasonNotObject},
		{key, `42`, reasonNotObject},
		{key, `{"port":"80"}`, reasonWrongType},
		{key, `{"host":42}`, reasonWrongType},
		{key, `{"ttl":-5}`, reasonWrongType},
		{key, `{"mail":"yes"}`, reasonWrongType},
		{key, `{"host":"999.1.1.1"}`, reasonInvalidHost},
		{key, `{"host":"has space.example.org"}`, reasonInvalidHost},
		{key, `{"host":"a..b"}`, reasonInvalidHost},
		{key, `{"host":"` + strings.Repeat("a", 64) + `.org"}`, reasonInvalidHost},
		{key, `{"host":"` + strings.Repeat("abcdefghi.", 26) + `org"}`, reasonInvalidHost},
		{key, `{"host":"10.0.0.1","port":65536}`, reasonOutOfRange},
		{key, `{"host":"10.0.0.1","port":-2}`, reasonOutOfRange},
		{key, `{"host":"10.0.0.1","priority":-1}`, reasonOutOfRange},
		{key, `{"host":"10.0.0.1","weight":70000}`, reasonOutOfRange},
		{key, `{"text":"` + strings.Repeat("t", maxText+1) + `"}`, reasonTooLarge},
		{"/skydns/local/example//x", `{"host":"10.0.0.1"}`, reasonInvalidKey},
		{"/", `{"host":"10.0.0.1"}`, reasonInvalidKey},
		{"x", `{"host":"10.0.0.1"}`, reasonInvalidKey},
		{"/skydns", `{"host":"10.0.0.1"}`, ""}, // the path's own key: the root name
		{"/skydns/local/example/" + strings.Repeat("k", 64), `{"host":"10.0.0.1"}`, reasonInvalidKey},
	}
	for _, tc := range tests {
		s, err := decodeService(tc.key, []byte(tc.value))
		var iv *invalidValue
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%.60s: unexpected error %v", tc.value, err)
		case tc.reason == "" && (s.Key != tc.key || s.Priority == 0):
			t.Errorf("%.60s: want key and default priority set, got %+v", tc.value, s)
		case tc.reason != "" && !errors.As(err, &iv):
			t.Errorf("%.60s: want a %s error, got %v", tc.value, tc.reason, err)
		case tc.reason != "" && iv.reason != tc.reason:
			t.Errorf("%.60s: want reason %s, got %s (%v)", tc.value, tc.reason, iv.reason, err)
		}
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
