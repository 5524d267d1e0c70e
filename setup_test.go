package etcdsd

import (
	"cmp"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/etcdsd/etcdsd/internal/index"
)

func TestParse(t *testing.T) {
	tests := []struct {
		input       string
		shouldErr   bool
		errContains string
		zones       []string
		path        string
		endpoints   []string
		minTTL      uint32
		maxTTL      uint32
		maxStale    time.Duration
		maxAnswers  int
		noApex      bool
		tls         bool
		wildcards   bool
		username    string
		startup     *time.Duration // nil: the default
		verify      *time.Duration // nil: the default
		notify      *time.Duration // nil: the default
		journal     *int           // nil: the default
		cache       *uint64        // nil: the default
		negativeTTL uint32         // 0: the default
		block       []string       // the server block's keys; nil: example.local.
		warning     string         // a warning the log must hold; "": none
	}{
		// Defaults.
		{input: "etcdsd", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd skydns.local 10.0.0.0/24", block: []string{"skydns.local.", "10.in-addr.arpa."}, zones: []string{"skydns.local.", "0.0.10.in-addr.arpa."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		// A zone inside the server block's, or above it, is reached by its queries.
		{input: "etcdsd a.example.local", zones: []string{"a.example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd local", zones: []string{"local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd anything.example", block: []string{"dns://.:53"}, zones: []string{"anything.example."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		// Every option.
		{input: `etcdsd skydns.local {
			path /other
			endpoint http://127.0.0.1:2379 http://127.0.0.2:2379
			credentials root secret
			tls testdata/tls/client.pem testdata/tls/client.key testdata/tls/ca.pem
			min-lease-ttl 1m
			max-lease-ttl 3600
			no_apex_fallback
			fallthrough in-addr.arpa
		}`, block: []string{"skydns.local.:1053"}, zones: []string{"skydns.local."}, path: "/other", endpoints: []string{"http://127.0.0.1:2379", "http://127.0.0.2:2379"},
			minTTL: 60, maxTTL: 3600, noApex: true, tls: true, username: "root", warning: "tls is set, but the etcd client dials"},
		{input: "etcdsd {\n tls\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, tls: true, warning: "use https://"},
		{input: "etcdsd {\n tls testdata/tls/ca.pem\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, tls: true, warning: "use https://"},
		{input: "etcdsd {\n min-lease-ttl 1\n max-lease-ttl 2h30m\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 1, maxTTL: 9000},
		{input: "etcdsd {\n max_stale 5m\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, maxStale: 5 * time.Minute},
		// Every duration option takes bare seconds too, as the lease options always did.
		{input: "etcdsd {\n max_stale 30\n startup_timeout 5\n verify 3600\n notify_interval 2\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400,
			maxStale: 30 * time.Second, startup: dur(5 * time.Second), verify: dur(time.Hour), notify: dur(2 * time.Second)},
		{input: "etcdsd {\n negative_ttl 5\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, negativeTTL: 5},
		{input: "etcdsd {\n negative_ttl 1m\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, negativeTTL: 60},
		// The endpoint forms of the etcd client.
		{input: "etcdsd {\n endpoint 127.0.0.1:2379 https://etcd.example:2379/ unix:///run/etcd.sock unixs://etcd.sock:0\n}", zones: []string{"example.local."}, path: "skydns",
			endpoints: []string{"127.0.0.1:2379", "https://etcd.example:2379/", "unix:///run/etcd.sock", "unixs://etcd.sock:0"}, minTTL: 30, maxTTL: 86400, warning: "give them all one scheme"},
		// Forms the etcd client takes too: a unix socket as unix:PATH, an IPv6 address, a
		// scheme in capitals, a path it ignores (with a warning).
		{input: "etcdsd {\n endpoint unix:/run/etcd.sock [::1]:2379 http://[::1]:2379 HTTP://127.0.0.1:2379 http://127.0.0.1:2379/v3\n}", zones: []string{"example.local."}, path: "skydns",
			endpoints: []string{"unix:/run/etcd.sock", "[::1]:2379", "http://[::1]:2379", "HTTP://127.0.0.1:2379", "http://127.0.0.1:2379/v3"}, minTTL: 30, maxTTL: 86400, warning: "the etcd client ignores its path"},
		{input: "etcdsd {\n verify 99999999999999999999\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, verify: dur(math.MaxInt64 / time.Second * time.Second)},
		{input: "etcdsd 10.0.0.0/12", block: []string{"."}, zones: []string{"0.10.in-addr.arpa.", "1.10.in-addr.arpa.", "2.10.in-addr.arpa.", "3.10.in-addr.arpa.", "4.10.in-addr.arpa.", "5.10.in-addr.arpa.", "6.10.in-addr.arpa.", "7.10.in-addr.arpa.", "8.10.in-addr.arpa.", "9.10.in-addr.arpa.", "10.10.in-addr.arpa.", "11.10.in-addr.arpa.", "12.10.in-addr.arpa.", "13.10.in-addr.arpa.", "14.10.in-addr.arpa.", "15.10.in-addr.arpa."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd Example.LOCAL _tcp.example.local", zones: []string{"example.local.", "_tcp.example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd {\n wildcards\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, wildcards: true},
		{input: "etcdsd {\n max_answers 20\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, maxAnswers: 20},
		{input: "etcdsd {\n startup_timeout 30s\n verify 1h\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, startup: dur(30 * time.Second), verify: dur(time.Hour)},
		{input: "etcdsd {\n startup_timeout 0\n verify 0\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, startup: dur(0), verify: dur(0)},
		{input: "etcdsd {\n notify_interval 5s\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, notify: dur(5 * time.Second)},
		{input: "etcdsd {\n notify_interval 5s\n ixfr_journal 0\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, notify: dur(5 * time.Second), journal: ptr(0)},
		{input: "etcdsd {\n answer_cache 16MiB\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, cache: ptr(uint64(16 << 20))},
		{input: "etcdsd {\n answer_cache 0\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, cache: ptr(uint64(0))},
		// The etcd plugin's deprecated no-ops are accepted.
		{input: "etcdsd {\n stubzones\n upstream 8.8.8.8\n debug\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},

		// Errors name the option.
		{input: "etcdsd {\n bogus\n}", shouldErr: true, errContains: "unknown property 'bogus'"},
		// An unknown option names the known one it is nearest to.
		{input: "etcdsd {\n max-stale 5m\n}", shouldErr: true, errContains: "unknown property 'max-stale'; did you mean 'max_stale'?"},
		{input: "etcdsd {\n min_lease_ttl 30\n}", shouldErr: true, errContains: "did you mean 'min-lease-ttl'?"},
		{input: "etcdsd {\n endpoints http://127.0.0.1:2379\n}", shouldErr: true, errContains: "did you mean 'endpoint'?"},
		{input: "etcdsd {\n startup-timout 5s\n}", shouldErr: true, errContains: "did you mean 'startup_timeout'?"},
		{input: "etcdsd {\n negativettl 5\n}", shouldErr: true, errContains: "did you mean 'negative_ttl'?"},
		// Endpoints the client could only time out on.
		{input: "etcdsd {\n endpoint http://10.0.0.1:2379,http://10.0.0.2:2379\n}", shouldErr: true, errContains: "separated by spaces (etcdctl's --endpoints takes commas"},
		{input: "etcdsd {\n endpoint http://etcd.example\n}", shouldErr: true, errContains: `"http://etcd.example" names no port: etcd's client port is usually 2379, as in http://etcd.example:2379`},
		{input: "etcdsd {\n endpoint 127.0.0.1:\n}", shouldErr: true, errContains: `"127.0.0.1:" names no port`},
		{input: "etcdsd {\n endpoint htp://127.0.0.1:2379\n}", shouldErr: true, errContains: `endpoint: "htp://127.0.0.1:2379": the scheme "htp" is none of http, https, unix, unixs`},
		{input: "etcdsd {\n endpoint http://127.0.0.1:2379 grpc://127.0.0.1:2379\n}", shouldErr: true, errContains: `the scheme "grpc"`},
		{input: "etcdsd {\n endpoint http://:2379\n}", shouldErr: true, errContains: `endpoint: "http://:2379" names no host`},
		{input: "etcdsd {\n endpoint http://127.0.0.1:99999\n}", shouldErr: true, errContains: `port "99999" is not a number from 1 to 65535`},
		{input: "etcdsd {\n endpoint 127.0.0.1:abc\n}", shouldErr: true, errContains: `port "abc" is not a number`},
		{input: "etcdsd {\n endpoint http://u:p@127.0.0.1:2379\n}", shouldErr: true, errContains: "give it with credentials"},
		{input: "etcdsd {\n endpoint UNIX:///run/etcd.sock\n}", shouldErr: true, errContains: "only as unix: and unixs:, in lower case"},
		{input: "etcdsd {\n endpoint unix:\n}", shouldErr: true, errContains: `"unix:" names no socket`},
		{input: "etcdsd {\n endpoint localhost\n}", shouldErr: true, errContains: `endpoint: "localhost" is neither a URL`},
		// On one line, the closing brace is an argument (Caddyfile syntax), dropped as the
		// built-in plugin ignores it.
		{input: "etcdsd { endpoint http://127.0.0.1:2379 }", zones: []string{"example.local."}, path: "skydns", endpoints: []string{"http://127.0.0.1:2379"}, minTTL: 30, maxTTL: 86400},
		// Zones no query reaches, and zones that are no name.
		{input: "etcdsd exampel.local", shouldErr: true, errContains: "zone exampel.local. is outside this server block's zones [example.local.]"},
		{input: "etcdsd example.local other.local", shouldErr: true, errContains: "zone other.local. is outside"},
		{input: "etcdsd example..local", shouldErr: true, errContains: `zone "example..local" is no domain name`},
		{input: "etcdsd example.local:", shouldErr: true, errContains: `zone "example.local:" is no domain name`},
		{input: "etcdsd {\n path\n}", shouldErr: true, errContains: "'path'"},
		{input: "etcdsd {\n path /a /b\n}", shouldErr: true, errContains: "'path'"},
		{input: "etcdsd {\n endpoint\n}", shouldErr: true, errContains: "'endpoint'"},
		{input: "etcdsd {\n credentials root\n}", shouldErr: true, errContains: "want 'credentials USERNAME PASSWORD'"},
		{input: "etcdsd {\n credentials\n}", shouldErr: true, errContains: "want 'credentials USERNAME PASSWORD'"},
		{input: "etcdsd {\n tls a b c d\n}", shouldErr: true, errContains: "'tls'"},
		{input: "etcdsd {\n tls /does/not/exist.pem\n}", shouldErr: true, errContains: "tls:"},
		{input: "etcdsd {\n tls testdata/tls/client.pem /does/not/exist.key\n}", shouldErr: true, errContains: "tls:"},
		{input: "etcdsd {\n min-lease-ttl\n}", shouldErr: true, errContains: "'min-lease-ttl'"},
		{input: "etcdsd {\n min-lease-ttl soon\n}", shouldErr: true, errContains: "min-lease-ttl: \"soon\""},
		{input: "etcdsd {\n max-lease-ttl -5s\n}", shouldErr: true, errContains: "max-lease-ttl: \"-5s\" is neither seconds nor a duration"},
		{input: "etcdsd {\n negative_ttl 0\n}", shouldErr: true, errContains: "negative_ttl: \"0\" is not a whole number of seconds between 1s and 300s"},
		{input: "etcdsd {\n negative_ttl 1h\n}", shouldErr: true, errContains: "negative_ttl: \"1h\" is not a whole number of seconds between 1s and 300s (the SOA's TTL"},
		{input: "etcdsd {\n negative_ttl 1.5s\n}", shouldErr: true, errContains: "is not a whole number of seconds"},
		{input: "etcdsd {\n ttl 5\n}", shouldErr: true, errContains: "did you mean 'negative_ttl'?"},
		{input: "etcdsd {\n verify_interval 5m\n}", shouldErr: true, errContains: "did you mean 'verify'?"},
		// What the built-in plugin takes starts unchanged, with a warning for what it changes.
		{input: "etcdsd {\n min-lease-ttl 0\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, warning: "min-lease-ttl 0 is 0 seconds, which means the default, 30s"},
		{input: "etcdsd {\n min-lease-ttl 500ms\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, warning: "which means the default, 30s"},
		{input: "etcdsd {\n min-lease-ttl 1.5s\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 1, maxTTL: 86400, warning: "min-lease-ttl 1.5s: TTLs are whole seconds, taking 1s"},
		{input: "etcdsd {\n max-lease-ttl 4294967295\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: math.MaxInt32, warning: "taking 2147483647s (RFC 2181 section 8)"},
		{input: "etcdsd {\n max-lease-ttl 4294967296\n}", shouldErr: true, errContains: "max-lease-ttl: \"4294967296\" is more than 4294967295 seconds"},
		{input: "etcdsd {\n max-lease-ttl 99999999999999999999\n}", shouldErr: true, errContains: "is more than 4294967295 seconds"},
		{input: "etcdsd {\n max-lease-ttl 2000000h\n}", shouldErr: true, errContains: "max-lease-ttl: \"2000000h\" is more than"},
		{input: "etcdsd dns://example.local", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd dns://10.0.0.0/24:53", block: []string{"."}, zones: []string{"0.0.10.in-addr.arpa."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd example.local:1053", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd dns://exampel.local", shouldErr: true, errContains: "zone exampel.local. is outside"},
		{input: "etcdsd bücher.example", block: []string{"."}, zones: []string{"bücher.example."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, warning: "they ask for xn--bcher-kva.example.; write that"},
		{input: "etcdsd *.example.local", zones: []string{"*.example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, warning: `zone *.example.local. has '*' in a label`},
		{input: `etcdsd "exa mple.local"`, block: []string{"."}, zones: []string{"exa mple.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, warning: `has ' ' in a label`},
		{input: "etcdsd {\n endpoint http://127.0.0.1:2379 }", zones: []string{"example.local."}, path: "skydns", endpoints: []string{"http://127.0.0.1:2379"}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd {\n endpoint unix://\n}", shouldErr: true, errContains: `"unix://" names no socket`},
		{input: "etcdsd {\n verify 1ms\n}", shouldErr: true, errContains: `verify: "1ms" is less than 500ms: each check reads every key`},
		{input: "etcdsd {\n max_stale 0\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd {\n min-lease-ttl 1h\n max-lease-ttl 60\n}", zones: []string{"example.local."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 3600, maxTTL: 60, warning: "min-lease-ttl 3600s is more than max-lease-ttl 60s"},
		{input: "etcdsd ::/0", block: []string{"."}, shouldErr: true, errContains: `zone "::/0" is no domain name: CoreDNS takes no CIDR that starts with ':' or '0'; write its reverse zone, ip6.arpa.`},
		{input: "etcdsd ::ffff:0:0/96", block: []string{"."}, shouldErr: true, errContains: "write its reverse zone, f.f.f.f." + strings.Repeat("0.", 20) + "ip6.arpa."},
		{input: "etcdsd 0100::/9", block: []string{"."}, shouldErr: true, errContains: "write the reverse zones of 100::/9 instead"},
		{input: "etcdsd 0.0.0.0/0:53", block: []string{"."}, zones: []string{"in-addr.arpa."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd 0100::/8", block: []string{"."}, shouldErr: true, errContains: "write its reverse zone, 1.0.ip6.arpa."},
		{input: "etcdsd example.local:abc", shouldErr: true, errContains: `zone "example.local:abc": "abc" is no port`},
		{input: "etcdsd", block: []string{"bücher.example."}, zones: []string{"bücher.example."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400, warning: "xn--bcher-kva.example."},
		{input: "etcdsd 300.0.0.0/8", block: []string{"."}, shouldErr: true, errContains: `zone "300.0.0.0/8" is no CIDR`},
		{input: "etcdsd 1/2.example.local", block: []string{"."}, shouldErr: true, errContains: "nor a reverse zone's name"},
		{input: "etcdsd 10.0.0.0/33", block: []string{"."}, shouldErr: true, errContains: `zone "10.0.0.0/33" is no CIDR`},
		{input: "etcdsd example.local/8", block: []string{"."}, shouldErr: true, errContains: "is no CIDR"},
		{input: "etcdsd 128/27.2.0.192.in-addr.arpa", block: []string{"."}, zones: []string{"128/27.2.0.192.in-addr.arpa."}, path: "skydns", endpoints: []string{defaultEndpoint}, minTTL: 30, maxTTL: 86400},
		{input: "etcdsd {\n negative_ttl\n}", shouldErr: true, errContains: "'negative_ttl DURATION'"},
		{input: "etcdsd {\n no_apex_fallback yes\n}", shouldErr: true, errContains: "'no_apex_fallback'"},
		{input: "etcdsd {\n wildcards on\n}", shouldErr: true, errContains: "'wildcards'"},
		{input: "etcdsd {\n notify_interval soon\n}", shouldErr: true, errContains: "notify_interval"},
		{input: "etcdsd {\n ixfr_journal -1\n}", shouldErr: true, errContains: "ixfr_journal"},
		{input: "etcdsd {\n answer_cache lots\n}", shouldErr: true, errContains: "answer_cache"},
		{input: "etcdsd {\n answer_cache\n}", shouldErr: true, errContains: "answer_cache"},
		{input: "etcdsd {\n max_stale\n}", shouldErr: true, errContains: "'max_stale DURATION'"},
		{input: "etcdsd {\n max_answers\n}", shouldErr: true, errContains: "'max_answers N'"},
		{input: "etcdsd {\n max_answers 0\n}", shouldErr: true, errContains: "max_answers: \"0\" is not a whole number"},
		{input: "etcdsd {\n max_answers many\n}", shouldErr: true, errContains: "max_answers: \"many\""},
		{input: "etcdsd {\n max_stale 1s\n}", shouldErr: true, errContains: "is less than 3s"},
		{input: "etcdsd {\n startup_timeout\n}", shouldErr: true, errContains: "'startup_timeout DURATION'"},
		{input: "etcdsd {\n startup_timeout 5s 6s\n}", shouldErr: true, errContains: "'startup_timeout DURATION'"},
		{input: "etcdsd {\n startup_timeout 5x\n}", shouldErr: true, errContains: "startup_timeout: \"5x\" is neither seconds nor a duration"},
		{input: "etcdsd {\n startup_timeout -1s\n}", shouldErr: true, errContains: "startup_timeout: \"-1s\" is neither seconds nor a duration"},
		{input: "etcdsd {\n verify\n}", shouldErr: true, errContains: "'verify DURATION'"},
		{input: "etcdsd {\n verify often\n}", shouldErr: true, errContains: "verify: \"often\" is neither seconds nor a duration"},
	}

	for i, tc := range tests {
		logs := captureLog(t)
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = tc.block
		if c.ServerBlockKeys == nil {
			c.ServerBlockKeys = []string{"example.local."}
		}
		stanzas, err := parse(c)
		if tc.shouldErr {
			if err == nil {
				t.Errorf("test %d: want an error for %q", i, tc.input)
			} else if !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("test %d: want an error containing %q, got %q", i, tc.errContains, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: unexpected error %v", i, err)
			continue
		}
		if got := logs.String(); tc.warning == "" && strings.Contains(got, "[WARNING]") || !strings.Contains(got, tc.warning) {
			t.Errorf("test %d: log %q, want a warning containing %q", i, got, tc.warning)
		}
		e := stanzas[0]
		if !equal(e.zones, tc.zones) {
			t.Errorf("test %d: zones %v, want %v", i, e.zones, tc.zones)
		}
		if e.PathPrefix != tc.path {
			t.Errorf("test %d: path %q, want %q", i, e.PathPrefix, tc.path)
		}
		if !equal(e.endpoints, tc.endpoints) {
			t.Errorf("test %d: endpoints %v, want %v", i, e.endpoints, tc.endpoints)
		}
		if e.MinLeaseTTL != tc.minTTL || e.MaxLeaseTTL != tc.maxTTL {
			t.Errorf("test %d: lease TTLs %d..%d, want %d..%d", i, e.MinLeaseTTL, e.MaxLeaseTTL, tc.minTTL, tc.maxTTL)
		}
		if want := cmp.Or(tc.maxAnswers, index.DefaultMaxAnswers); e.MaxAnswers != want {
			t.Errorf("test %d: max_answers %d, want %d", i, e.MaxAnswers, want)
		}
		if e.MaxStale != tc.maxStale {
			t.Errorf("test %d: max_stale %v, want %v", i, e.MaxStale, tc.maxStale)
		}
		if e.NoApexFallback != tc.noApex {
			t.Errorf("test %d: no_apex_fallback %v, want %v", i, e.NoApexFallback, tc.noApex)
		}
		if want := *cmp.Or(tc.notify, dur(defaultNotifyInterval)); e.NotifyInterval != want {
			t.Errorf("test %d: notify_interval %v, want %v", i, e.NotifyInterval, want)
		}
		if want := *cmp.Or(tc.journal, ptr(defaultJournal)); e.watch.journalSize != want {
			t.Errorf("test %d: ixfr_journal %d, want %d", i, e.watch.journalSize, want)
		}
		if want := *cmp.Or(tc.cache, ptr(uint64(index.DefaultAnswerCache))); e.watch.answerBudget != want {
			t.Errorf("test %d: answer_cache %d, want %d", i, e.watch.answerBudget, want)
		}
		if e.Wildcards != tc.wildcards {
			t.Errorf("test %d: wildcards %v, want %v", i, e.Wildcards, tc.wildcards)
		}
		if (e.tlsConfig != nil) != tc.tls {
			t.Errorf("test %d: tls config set %v, want %v", i, e.tlsConfig != nil, tc.tls)
		}
		if want := cmp.Or(tc.negativeTTL, index.DefaultNegativeTTL); e.NegativeTTL != want {
			t.Errorf("test %d: negative_ttl %d, want %d", i, e.NegativeTTL, want)
		}
		if e.username != tc.username {
			t.Errorf("test %d: username %q, want %q", i, e.username, tc.username)
		}
		if want := *cmp.Or(tc.startup, dur(defaultStartupTimeout)); e.StartupTimeout != want {
			t.Errorf("test %d: startup_timeout %v, want %v", i, e.StartupTimeout, want)
		}
		if want := *cmp.Or(tc.verify, dur(defaultVerify)); e.watchers[0].verifyEvery != want {
			t.Errorf("test %d: verify %v, want %v", i, e.watchers[0].verifyEvery, want)
		}
	}
}

func dur(d time.Duration) *time.Duration { return &d }

// The option an unknown one is taken for, or none: an interval spelled out names its
// option, another suffix does not.
func TestSuggest(t *testing.T) {
	for opt, want := range map[string]string{
		"verify_interval":  "verify",
		"endpoint_timeout": "",
		"endpoints":        "endpoint",
		"Max-Stale":        "max_stale",
		"ttl":              "negative_ttl",
		"zone":             "",
	} {
		if got := suggest(opt); got != want {
			t.Errorf("suggest(%q) = %q, want %q", opt, got, want)
		}
	}
}

func TestParseErrorNamesLine(t *testing.T) {
	c := caddy.NewTestController("dns", "etcdsd {\n path /a\n\n min-lease-ttl x\n}")
	_, err := parse(c)
	if err == nil || !strings.Contains(err.Error(), "Testfile:4") {
		t.Fatalf("want the error to name line 4, got %v", err)
	}
}

func TestParseSeveralStanzas(t *testing.T) {
	c := caddy.NewTestController("dns", "etcdsd a.local {\n path /a\n}\netcdsd b.local {\n path /b\n}")
	stanzas, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(stanzas) != 2 || stanzas[0].PathPrefix != "/a" || stanzas[1].PathPrefix != "/b" ||
		stanzas[1].zones[0] != "b.local." {
		t.Fatalf("want two stanzas for /a and /b, got %+v", stanzas)
	}
}

func TestParseFallthroughZones(t *testing.T) {
	c := caddy.NewTestController("dns", "etcdsd a.local {\n fallthrough in-addr.arpa\n}")
	stanzas, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	f := stanzas[0].Fall
	if !f.Through("1.0.0.10.in-addr.arpa.") || f.Through("x.a.local.") {
		t.Fatalf("fallthrough should cover in-addr.arpa only, got %+v", f)
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestWatchZones(t *testing.T) {
	tests := []struct {
		zones    string
		path     string
		prefixes []string          // watched key prefixes
		zoneOf   map[string]string // zone -> watched prefix
	}{
		{"example.local", "/skydns", []string{"/skydns/local/example"}, map[string]string{"example.local.": "/skydns/local/example"}},
		{"a.example.local b.example.local", "skydns", []string{"/skydns/local/example/a", "/skydns/local/example/b"}, nil},
		// A zone inside another is served from the outer zone's keys.
		{"a.example.local example.local", "/skydns", []string{"/skydns/local/example"},
			map[string]string{"a.example.local.": "/skydns/local/example", "example.local.": "/skydns/local/example"}},
		// A zone that extends another's last label is not inside it.
		{"example.local xexample.local", "/skydns", []string{"/skydns/local/example", "/skydns/local/xexample"}, nil},
		{"example.local 10.0.0.0/8", "/p", []string{"/p/local/example", "/p/arpa/in-addr/10"}, nil},
		{".", "/skydns", []string{"/skydns"}, nil},
		{". example.local", "/skydns", []string{"/skydns"}, map[string]string{"example.local.": "/skydns"}},
	}
	for _, tc := range tests {
		stanzas, err := parse(caddy.NewTestController("dns", "etcdsd "+tc.zones+" {\n path "+tc.path+"\n}"))
		if err != nil {
			t.Fatal(err)
		}
		e := stanzas[0]
		var got []string
		for _, w := range e.watchers {
			got = append(got, w.root)
		}
		if !equal(got, tc.prefixes) {
			t.Errorf("%s: watched %v, want %v", tc.zones, got, tc.prefixes)
		}
		for z, p := range tc.zoneOf {
			if w := e.byZone[z]; w == nil || w.root != p {
				t.Errorf("%s: zone %s served from %v, want %s", tc.zones, z, w, p)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
