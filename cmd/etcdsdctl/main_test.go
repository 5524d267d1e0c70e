package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/etcdsd/etcdsd" // the tests resolve through a CoreDNS with the plugin
	"github.com/etcdsd/etcdsd/internal/devetcd"
	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/internal/testserver"
	"github.com/etcdsd/etcdsd/internal/wait"
	"github.com/etcdsd/etcdsd/register"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var testEtcd devetcd.Shared

// The test binary doubles as etcdsdctl for the tests that need a process to kill.
const asCommand = "ETCDSDCTL_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(asCommand) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(devetcd.RunTests(m, &testEtcd))
}

// ctl runs one command line in-process against the test etcd.
func ctl(t *testing.T, prefix string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	args = append([]string{"--endpoints", testEtcd.Server().Endpoint, "--path", prefix}, args...)
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func put(t *testing.T, key, value string) {
	t.Helper()
	if _, err := testEtcd.Client().Put(context.Background(), key, value); err != nil {
		t.Fatal(err)
	}
}

func keys(t *testing.T, prefix string) []string {
	t.Helper()
	resp, err := testEtcd.Client().Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, kv := range resp.Kvs {
		ks = append(ks, string(kv.Key))
	}
	return ks
}

func TestLs(t *testing.T) {
	const p = "/ls"
	put(t, p+"/local/example/_tcp/_web/web-server01", `{"host":"1.1.1.1","port":80}`)
	put(t, p+"/local/example/_tcp/_web/web-server02", `{"host":"1.1.1.2","port":80}`)
	put(t, p+"/local/example/_tcp/_web/broken", `{"host":"999.1.1.1"}`)
	put(t, p+"/local/example/txt", `{"text":"hello"}`)

	code, out, errOut := ctl(t, p, "ls", "_web._tcp.example.local", "--zone", "example.local")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		";; SRV _web._tcp.example.local.",
		"_web._tcp.example.local.\t300\tIN\tSRV\t10 50 80 web-server01._web._tcp.example.local.",
		"web-server02._web._tcp.example.local.\t300\tIN\tA\t1.1.1.2  ; additional",
		";; A _web._tcp.example.local.",
		"_web._tcp.example.local.\t300\tIN\tA\t1.1.1.1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ls output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TXT") {
		t.Errorf("ls shows a TXT answer for a name without text:\n%s", out)
	}
	if !strings.Contains(errOut, "skipped "+p+"/local/example/_tcp/_web/broken: invalid_host") {
		t.Errorf("ls does not report the skipped value: %q", errOut)
	}

	if code, out, _ := ctl(t, p, "ls", "txt.example.local"); code != 0 || !strings.Contains(out, "txt.example.local.\t300\tIN\tTXT\t\"hello\"") {
		t.Errorf("ls of a text record: exit %d\n%s", code, out)
	}
	put(t, p+"/local/example/bad/x", `{"host":`)
	for name, want := range map[string]string{
		"nothing.example.local": "no records for nothing.example.local.: no key at or below /ls/local/example/nothing\n",
		"bad.example.local":     "no records for bad.example.local.: 1 key at or below /ls/local/example/bad, of which 1 would be skipped and 0 are no DNS name\n",
	} {
		if code, _, errOut := ctl(t, p, "ls", name); code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("ls of %s: exit %d, %q; want 1 and %q", name, code, errOut, want)
		}
	}
	if code, _, errOut := ctl(t, p, "ls", "www.example.org", "--zone", "example.local"); code != 1 || !strings.Contains(errOut, "not in zone") {
		t.Errorf("ls outside the zone: exit %d, %q", code, errOut)
	}
}

// ls answers as etcdsd does where the answer leaves the zone's data: a CNAME to a name
// outside the zone (shown without the target's records, which ls does not look up), a
// reverse zone given as a CIDR, the question's case, and a name whose keys pass
// max_answers (TC, and a note).
func TestLsBeyondTheData(t *testing.T) {
	const p = "/lsb"
	put(t, p+"/local/example/multi/a", `{"host":"www.example.org"}`)
	put(t, p+"/local/example/multi/b", `{"host":"10.1.2.3"}`)
	put(t, p+"/arpa/in-addr/10/0/0/1", `{"host":"reverse.example.local"}`)
	var ops []clientv3.Op
	for i := range index.DefaultMaxAnswers + 1 {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/local/example/big/k%05d", p, i), fmt.Sprintf(`{"host":"10.7.%d.%d"}`, i/256, i%256)))
	}
	if err := devetcd.Commit(context.Background(), testEtcd.Client(), ops); err != nil {
		t.Fatal(err)
	}
	// After the keys a lookup reads: AAAA finds none of its type there, and is cut too.
	put(t, p+"/local/example/big/zzz", `{"host":"2001:db8::99"}`)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"ls", "multi.example.local", "--zone", "example.local"}, []string{
			";; A multi.example.local.", "multi.example.local.\t300\tIN\tCNAME\twww.example.org.", "multi.example.local.\t300\tIN\tA\t10.1.2.3",
			";; AAAA multi.example.local."}},
		{[]string{"ls", "1.0.0.10.in-addr.arpa", "--zone", "10.0.0.0/8"}, []string{
			";; PTR 1.0.0.10.in-addr.arpa.", "1.0.0.10.in-addr.arpa.\t300\tIN\tPTR\treverse.example.local."}},
		{[]string{"ls", "Multi.Example.Local", "--zone", "example.local"}, []string{"Multi.Example.Local.\t300\tIN\tA\t10.1.2.3"}},
		{[]string{"ls", "big.example.local", "--zone", "example.local"}, []string{
			";; A big.example.local.", fmt.Sprintf(";; truncated (TC): more than %d keys under the name", index.DefaultMaxAnswers), "big.example.local.\t300\tIN\tA\t10.7.15.255",
			";; AAAA big.example.local.\n;; truncated (TC)"}},
	} {
		code, out, errOut := ctl(t, p, tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", tc.args, code, errOut)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, want, out)
			}
		}
	}
}

// releases returns the etcd binaries to run a test on: the current release's and each of
// devetcd.Releases (Debian's 3.4 in CI).
func releases(t *testing.T) []string {
	bin, err := devetcd.CurrentBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{bin}, devetcd.Releases()...)
}

// The README's read-only role, which may read the keys below one zone (here also their
// check states), and one on another zone: check and ls work over what it may read, with or
// without a zone, and say which ranges they could not read and why, and check exits 2 for
// them; what it may not do at all is an error that says what the role grants. etcd lets a
// user read its own roles in 3.4 as in 3.7, which is how etcdsdctl knows.
func TestReadOnlyRole(t *testing.T) {
	const p = "/ro"
	for _, bin := range releases(t) {
		c, admin := devetcd.StartClusterFor(t, bin, 1)
		t.Run("etcd "+c.Version, func(t *testing.T) {
			ctx := context.Background()
			for k, v := range map[string]string{
				p + "/local/example":                           `{"host":"10.3.0.9"}`,
				p + "/local/example/web/a":                     `{"host":"10.3.0.1","port":80}`,
				p + "/local/example/web/b":                     `{"host":`,
				p + "/local/other/x":                           `{"host":"10.9.0.1"}`,
				register.HealthKey(p + "/local/example/web/a"): `{"passing":true,"since":"2026-01-02T03:04:05Z"}`,
			} {
				if _, err := admin.Put(ctx, k, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := devetcd.EnableAuth(ctx, admin, "rootpw",
				// The zone's records and its check states, as a record's key spells it.
				devetcd.Reader{User: "coredns", Password: "corednspw", Ranges: [][2]string{
					devetcd.PrefixRange(p + "/local/example/"), devetcd.PrefixRange(register.HealthKey(p + "/local/example/"))}},
				devetcd.Reader{User: "other", Password: "otherpw", Ranges: [][2]string{devetcd.PrefixRange(p + "/local/other/")}}); err != nil {
				t.Fatal(err)
			}
			const (
				who   = "user coredns (role coredns)"
				other = "user other (role other)"
			)
			for _, tc := range []struct {
				user        string // "" for coredns
				args        []string
				code        int
				out, errOut []string // what stdout and stderr hold
				not         []string // what stdout does not hold
			}{
				// What could not be read exits 2, whatever was found in the rest.
				{"", []string{"check"}, 2, []string{
					p + "/local/example/web/b: invalid_json",
					"checked 2 keys under /ro, in the parts " + who + " may read: 1 would be skipped, 0 are no DNS name",
					"not read: /ro, [/ro/, /ro/local/example/), [/ro/local/example0, /ro0): " + who + " may not read there"}, nil, nil},
				{"", []string{"check", "example.local"}, 2, []string{
					"checked 2 keys under /ro/local/example, in the parts " + who + " may read: 1 would be skipped",
					"not read: /ro/local/example: " + who + " may not read there (it may read [/etcdsd/health/ro/local/example/, /etcdsd/health/ro/local/example0), [/ro/local/example/, /ro/local/example0))"}, nil, nil},
				{"", []string{"check", "web.example.local"}, 1, []string{
					"checked 2 keys under /ro/local/example/web: 1 would be skipped"}, nil, []string{"not read"}},
				// A role on another zone: the one key it may read is no clean answer for all.
				{"other", []string{"check"}, 2, []string{
					"checked 1 key under /ro, in the parts " + other + " may read: 0 would be skipped, 0 are no DNS name",
					"not read: /ro, [/ro/, /ro/local/other/), [/ro/local/other0, /ro0): " + other + " may not read there"}, nil, nil},
				{"other", []string{"check", "example.local"}, 2, nil, []string{
					"nothing under /ro/local/example could be read: " + other + " may not read there (it may read [/ro/local/other/, /ro/local/other0))"}, nil},
				{"other", []string{"check", "x.other.local"}, 0, []string{
					"checked 1 key under /ro/local/other/x: 0 would be skipped, 0 are no DNS name"}, nil, []string{"not read"}},
				{"", []string{"ls", "web.example.local"}, 0, []string{
					";; zone example.local.: the widest at or above web.example.local. whose keys user coredns may read (reading [/ro/local/, /ro/local0): etcdserver: permission denied)",
					"web.example.local.\t300\tIN\tA\t10.3.0.1",
					";; /ro/local/example/web/a: check passing since 2026-01-02T03:04:05Z"},
					[]string{"skipped /ro/local/example/web/b: invalid_json"}, []string{";; check states"}},
				// The check states below a name are read where the role grants them, though
				// it does not grant the name's own.
				{"", []string{"ls", "example.local"}, 0, []string{
					";; zone example.local.: the widest",
					"example.local.\t300\tIN\tA\t10.3.0.1",
					";; not read: /ro/local/example: " + who + " may not read there",
					";; /ro/local/example/web/a: check passing since 2026-01-02T03:04:05Z",
					";; check states not read: /etcdsd/health/ro/local/example: " + who + " may not read there"}, nil, []string{"10.3.0.9"}},
				{"", []string{"ls", "web.example.local", "--zone", "example.local"}, 0, []string{
					"web.example.local.\t300\tIN\tA\t10.3.0.1"}, nil, []string{";; zone"}},
				// A role that grants no check state: one line that says so, no etcd error.
				{"other", []string{"ls", "x.other.local"}, 0, []string{
					"x.other.local.\t300\tIN\tA\t10.9.0.1",
					";; check states not shown: " + other + " may not read them (at or below /etcdsd/health/ro/local/other/x)\n"}, nil, []string{"etcd refused"}},
				{"", []string{"ls", "x.other.local"}, 1, nil, []string{
					"reading the keys of x.other.local. or of any zone above it: etcd refused " + who + " to read [/ro/local/other/x/, /ro/local/other/x0) (etcdserver: permission denied): its roles grant read on none of it"}, nil},
				{"", []string{"ls", "x.other.local", "--zone", "other.local"}, 1, nil, []string{
					"reading the keys of zone other.local.: etcd refused " + who + " to read [/ro/local/other/, /ro/local/other0)",
					"without --zone, ls previews the name in the widest zone above it"}, nil},
				{"", []string{"rm", "web.example.local"}, 1, nil, []string{
					"etcd refused " + who + " to delete /ro/local/example/web (etcdserver: permission denied): its roles grant write on none of it"}, nil},
				{"", []string{"register", "new.example.local", "--host", "10.3.0.5"}, 1, nil, []string{
					"etcd refused " + who + " to write /ro/local/example/new (", "its roles grant write on none of it"}, nil},
			} {
				user := "coredns"
				if tc.user != "" {
					user = tc.user
				}
				args := append([]string{"--user", user + ":" + user + "pw"}, tc.args...)
				var o, e bytes.Buffer
				code := run(append([]string{"--endpoints", c.Endpoint(0), "--path", p}, args...), &o, &e)
				if code != tc.code {
					t.Errorf("%v: exit %d, want %d\n%s%s", args, code, tc.code, o.String(), e.String())
				}
				for _, want := range tc.out {
					if !strings.Contains(o.String(), want) {
						t.Errorf("%v: stdout lacks %q:\n%s%s", args, want, o.String(), e.String())
					}
				}
				for _, want := range tc.errOut {
					if !strings.Contains(e.String(), want) {
						t.Errorf("%v: stderr lacks %q:\n%s%s", args, want, o.String(), e.String())
					}
				}
				for _, not := range tc.not {
					if strings.Contains(o.String(), not) {
						t.Errorf("%v: stdout holds %q:\n%s", args, not, o.String())
					}
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	const p = "/check"
	put(t, p+"/local/example/good", `{"host":"10.0.0.1","port":80}`)
	put(t, "/check-sibling/bad", `not json`) // not under the path: not checked
	if code, out, errOut := ctl(t, p, "check"); code != 0 || !strings.Contains(out, "checked 1 key under /check: 0 would be skipped, 0 are no DNS name") {
		t.Fatalf("check of a clean path: exit %d\n%s%s", code, out, errOut)
	}

	put(t, p+"/local/example/port", `{"host":"10.0.0.1","port":70000}`)
	put(t, p+"/local/example/a/json", `{"host":`)
	put(t, p+"/local/example/a//empty", `{"host":"10.0.0.1"}`)
	code, out, _ := ctl(t, p, "check")
	if code != 1 {
		t.Errorf("check with bad values: exit %d, want 1", code)
	}
	for _, want := range []string{
		p + "/local/example/port: out_of_range: port 70000",
		p + "/local/example/a/json: invalid_json:",
		p + "/local/example/a//empty: invalid_key:",
		"(no name: its records answer for the names above it only)",
		"checked 4 keys under /check: 2 would be skipped, 1 is no DNS name",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// Below a name, only its subtree is read: the name's key in any case, or a key as it is.
	put(t, p+"/local/example/Caps", `{"host":`)
	for _, tc := range []struct {
		arg  string
		code int
		want string
	}{
		{"good.example.local", 0, "checked 1 key under /check/local/example/good: 0 would be skipped, 0 are no DNS name"},
		{"CAPS.example.local", 1, "checked 1 key under /check/local/example/Caps: 1 would be skipped, 0 are no DNS name"},
		{"nothing.example.local", 0, "checked 0 keys under /check/local/example/nothing: there is no key at or below it"},
		{p + "/local/example/a//empty", 1, "checked 1 key under /check/local/example/a//empty: 0 would be skipped, 1 is no DNS name"},
		// Trouble, such as a NAME that stands for no key, exits 2: 1 is for what check finds.
		{"/elsewhere/x", 2, "key /elsewhere/x is not under --path /check"},
		{"*.example.local", 2, `*.example.local.: label "*" is a wildcard in lookups, so it stands for no one key; to name a key as it is, give the key (such as /check/local/example/*)`},
	} {
		code, out, errOut := ctl(t, p, "check", tc.arg)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("check %s: exit %d, want %d and %q:\n%s%s", tc.arg, code, tc.code, tc.want, out, errOut)
		}
	}
}

// Keys are anyone's bytes: a newline or a terminal escape in a key reaches the operator's
// terminal escaped, in check's and ls's output alike.
func TestKeysPrintedEscaped(t *testing.T) {
	const p = "/esc"
	put(t, p+"/local/example/x/a\n[INFO] forged line", `{"host":`)
	put(t, p+"/local/example/x/\x1b[31mred", `not json`)
	_, out, errOut := ctl(t, p, "check")
	_, lsOut, lsErr := ctl(t, p, "ls", "x.example.local")
	for what, text := range map[string]string{"check": out + errOut, "ls": lsOut + lsErr} {
		if strings.Contains(text, "\x1b") {
			t.Errorf("%s printed a raw escape sequence:\n%q", what, text)
		}
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "[INFO] forged") {
				t.Errorf("%s printed a key's newline raw:\n%s", what, text)
			}
		}
		if !strings.Contains(text, `\n[INFO] forged line`) || !strings.Contains(text, `\x1b[31mred`) {
			t.Errorf("%s does not name the keys, escaped:\n%s", what, text)
		}
	}
}

// rm finds a name's key in any case of its letters, takes a key as it is, and says what
// it deleted and, when it deletes nothing, what is there.
func TestRm(t *testing.T) {
	const p = "/rm"
	for _, k := range []string{"web", "web/a", "web/b", "web-2", "MixedCase", "Both", "both", "kids/x", "kids/y", "kids/Z/deep", "a//empty",
		"Cap/child", "cap/Child2", "parent/a", "parent/b", "Rest", "rest/x"} {
		put(t, p+"/local/example/"+k, `{"host":"10.0.0.1"}`)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"a.web.example.local"}, 0, "deleted 1 key: /rm/local/example/web/a\n"},
		{[]string{"a.web.example.local"}, 1, "no record for a.web.example.local.: no key /rm/local/example/web/a, in any case of its letters, nor any below it"},
		{[]string{"web.example.local"}, 0, "deleted 1 key: /rm/local/example/web\n1 key below /rm/local/example/web is left (rm -r deletes the keys below a name too)"},
		{[]string{"kids.example.local"}, 1, "no record for kids.example.local. at /rm/local/example/kids: a name with 3 keys below it; rm -r kids.example.local deletes them with it"},
		{[]string{"mixedcase.example.local"}, 0, "deleted 1 key: /rm/local/example/MixedCase\n"},
		{[]string{"BOTH.example.local"}, 0, "deleted 2 keys: /rm/local/example/Both; /rm/local/example/both\n"},
		{[]string{"-r", "Web.Example.Local"}, 0, "deleted 1 key: 1 key below /rm/local/example/web\n"},
		{[]string{"-r", "kids.example.local"}, 0, "deleted 3 keys: 3 keys below /rm/local/example/kids\n"},
		{[]string{p + "/local/example/a//empty"}, 0, "deleted 1 key: /rm/local/example/a//empty\n"},
		{[]string{p + "/local/example/a//empty"}, 1, "no key /rm/local/example/a//empty, nor any below it"},
		// The keys below a name are counted in every spelling of it, as -r deletes them.
		{[]string{"cap.example.local"}, 1, "no record for cap.example.local.: a name with 2 keys below it (1 below /rm/local/example/Cap, 1 below /rm/local/example/cap); rm -r cap.example.local deletes them with it"},
		{[]string{"-r", "cap.example.local"}, 0, "deleted 2 keys: 1 key below /rm/local/example/Cap; 1 key below /rm/local/example/cap\n"},
		{[]string{"rest.example.local"}, 0, "deleted 1 key: /rm/local/example/Rest\n1 key below /rm/local/example/rest is left (rm -r deletes the keys below a name too)"},
		{[]string{"-r", "rest.example.local"}, 0, "deleted 1 key: 1 key below /rm/local/example/rest\n"},
		// A KEY is named once.
		{[]string{p + "/local/example/parent"}, 1, "Error: no key /rm/local/example/parent: 2 keys below it; rm -r deletes them with it\n"},
		{[]string{"-r", p + "/local/example/parent"}, 0, "deleted 2 keys: 2 keys below /rm/local/example/parent\n"},
		{[]string{"*.example.local"}, 1, `label "*" is a wildcard in lookups, so it stands for no one key; to name a key as it is, give the key (such as /rm/local/example/*)`},
		{[]string{"-r", p}, 1, "/rm is --path itself: rm deletes records below it"},
		{[]string{"/elsewhere/x"}, 1, "key /elsewhere/x is not under --path /rm"},
	} {
		code, out, errOut := ctl(t, p, append([]string{"rm"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("rm %v: exit %d, want %d and %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
	if got := keys(t, p+"/"); len(got) != 1 || got[0] != p+"/local/example/web-2" {
		t.Errorf("after the rms, keys %v; want only the sibling web-2", got)
	}
}

// spellings finds every key that spells a name with capitals, and no sibling that merely
// starts with its letters.
func TestSpellings(t *testing.T) {
	const p = "/sp"
	for _, k := range []string{
		"local/example/web", "local/example/Web/a", "Local/example/web", "local/example/WEB-2", "local/example/wEb.x",
		"local/example/Webs", "local/example/WE", "local/example/DOT.x", "local/example/DOT/z", "local/example/dot.y",
		"local/exampleX/web",
	} {
		put(t, p+"/"+k, `{"host":"10.0.0.1"}`)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{testEtcd.Server().Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"web.example.local", []string{"/sp/Local/example/web", "/sp/local/example/Web", "/sp/local/example/web"}},
		{"webs.example.local", []string{"/sp/local/example/Webs"}},
		{"we.example.local", []string{"/sp/local/example/WE"}},
		{"web-2.example.local", []string{"/sp/local/example/WEB-2"}},
		{"dot.example.local", []string{"/sp/local/example/DOT"}},
		{"example.local", []string{"/sp/Local/example", "/sp/local/example"}},
		{"none.example.local", []string{"/sp/local/example/none"}},
	} {
		tg, err := parseTarget(p, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tg.keys(context.Background(), cli, "", index.RootKey(p))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("spellings of %s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// split finds the parts of a range that the permissions of a user's roles cover, merged
// as etcd merges them, and the parts they do not.
func TestSplit(t *testing.T) {
	key := func(k string) interval { return spanInterval(index.Span{Start: k}) }
	for _, tc := range []struct {
		s       interval
		perms   []interval
		in, out string
	}{
		{interval{"/a/", "/a0"}, nil, "", "[/a/, /a0)"},
		{interval{"/a/", "/a0"}, []interval{{"/a/b/", "/a/b0"}}, "[/a/b/, /a/b0)", "[/a/, /a/b/), [/a/b0, /a0)"},
		{interval{"/a/", "/a0"}, []interval{{"/", ""}}, "[/a/, /a0)", ""},
		{interval{"/a/", "/a0"}, []interval{{"/a/c", "/b"}, {"/a/", "/a/c"}}, "[/a/, /a0)", ""},
		{interval{"/a/", "/a0"}, []interval{key("/a/k"), {"/a/x", "/a/z"}, {"/b", "/c"}}, "/a/k, [/a/x, /a/z)", `[/a/, /a/k), ["/a/k\x00", /a/x), [/a/z, /a0)`},
		{key("/a"), []interval{{"/a/", "/a0"}}, "", "/a"},
		{key("/a"), []interval{{"/", "/a\x00"}}, "/a", ""},
	} {
		in, out := split(tc.s, merge(tc.perms))
		if spans(in) != tc.in || spans(out) != tc.out {
			t.Errorf("split(%v, %v) = %s | %s, want %s | %s", tc.s, tc.perms, spans(in), spans(out), tc.in, tc.out)
		}
	}
}

// Errors that leave etcd unreached say why: a port nobody listens on, TLS flags that do
// not go together or name no file. They exit 1, and 2 for check, whose 1 is for what it
// finds.
func TestConnectionErrors(t *testing.T) {
	port := devetcd.FreePortFor(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--endpoints", fmt.Sprintf("127.0.0.1:%d", port), "--command-timeout", "1s", "check"}, 2, "etcd is not reachable: dial tcp 127.0.0.1:"},
		{[]string{"--endpoints", fmt.Sprintf("http://127.0.0.1:%d", port), "--command-timeout", "1s", "rm", "x.example.local"}, 1, "connect: connection refused"},
		{[]string{"--cert", "/nonexistent.pem", "check"}, 2, "--cert and --key go together"},
		{[]string{"--cacert", "/nonexistent.pem", "check"}, 2, "reading the TLS files (--cacert, --cert, --key): open /nonexistent.pem: no such file or directory"},
		{[]string{"--cacert", "/nonexistent.pem", "ls", "x.example.local"}, 1, "reading the TLS files (--cacert, --cert, --key)"},
		{[]string{"check", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
		{[]string{"check", "a.example.local", "b.example.local"}, 2, "accepts at most 1 arg(s), received 2"},
	} {
		var o, e bytes.Buffer
		if code := run(tc.args, &o, &e); code != tc.code || !strings.Contains(e.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, e.String(), tc.code, tc.want)
		}
	}
}

// startDNS serves zone example.local from the test etcd under prefix with etcdsd, as a
// CoreDNS would, and returns its address.
func startDNS(t *testing.T, prefix string) string {
	inst, ports := testserver.Start(t, 1, func(ports []int) string {
		return fmt.Sprintf("example.local:%d {\n bind 127.0.0.1\n etcdsd {\n  path %s\n  endpoint %s\n }\n}\n",
			ports[0], prefix, testEtcd.Server().Endpoint)
	})
	t.Cleanup(func() { testserver.Stop(inst) })
	return "127.0.0.1:" + strconv.Itoa(ports[0])
}

// lookupA returns the A records etcdsd answers for name, and the rcode.
func lookupA(t *testing.T, addr, name string) ([]*dns.A, int) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var as []*dns.A
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			as = append(as, a)
		}
	}
	return as, r.Rcode
}

// registerProcess starts `etcdsdctl register` as a process of its own.
func registerProcess(t *testing.T, prefix string, args ...string) *exec.Cmd {
	t.Helper()
	args = append([]string{"--endpoints", testEtcd.Server().Endpoint, "--path", prefix, "register"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asCommand+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("register's output:\n%s", out.String())
		}
	})
	return cmd
}

// register says the TTL etcd granted, not the one asked for (etcd grants no lease under
// its minimum TTL, 2 s here), and stopping it during its first check exits at once, cleanly.
func TestRegisterTTLAndEarlyStop(t *testing.T) {
	const p = "/regttl"
	out := &devetcd.Buffer{} // read while the process writes
	cmd := exec.Command(os.Args[0], "--endpoints", testEtcd.Server().Endpoint, "--path", p, "register",
		"short.example.local", "--host", "10.0.0.1", "--lease", "100ms")
	cmd.Env = append(os.Environ(), asCommand+"=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "registered", func() bool { return strings.Contains(out.String(), "registered") })
	resp, err := testEtcd.Client().Get(context.Background(), p+"/local/example/short")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the record: %v %v", resp, err)
	}
	ttl, err := testEtcd.Client().TimeToLive(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("(ttl %v)", time.Duration(ttl.GrantedTTL)*time.Second); !strings.Contains(out.String(), want) {
		t.Errorf("register printed %q, want the granted %s", out.String(), want)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	out = &devetcd.Buffer{}
	cmd = exec.Command(os.Args[0], "--endpoints", testEtcd.Server().Endpoint, "--path", p, "register",
		"slow.example.local", "--host", "10.0.0.2", "--check-exec", "sleep 30", "--check-timeout", "60s")
	cmd.Env = append(os.Environ(), asCommand+"=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // in its first check
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	if err != nil || strings.Contains(out.String(), "canceled") {
		t.Errorf("SIGTERM during the first check: %v\n%s", err, out.String())
	}
}

// A registered process that is killed cannot clean up: its record leaves DNS when the
// lease runs out, within the lease's TTL of the kill.
func TestRegisterKilledLeavesDNSWithinTTL(t *testing.T) {
	const (
		p     = "/regkill"
		name  = "web-server04._web._tcp.example.local."
		lease = 3 * time.Second
	)
	addr := startDNS(t, p)
	cmd := registerProcess(t, p, name, "--host", "1.1.1.4", "--port", "80", "--lease", lease.String())
	wait.For(t, 10*time.Second, "registered record in DNS", func() bool {
		as, _ := lookupA(t, addr, name)
		return len(as) == 1 && as[0].A.String() == "1.1.1.4"
	})
	if as, _ := lookupA(t, addr, name); as[0].Hdr.Ttl > uint32(lease/time.Second) {
		t.Errorf("record TTL %d, want at most the lease's %v so that caches forget it too", as[0].Hdr.Ttl, lease)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// etcd checks for expired leases every 500 ms; the rest is slack for a loaded machine.
	took := wait.For(t, lease+2500*time.Millisecond, "record gone after the kill", func() bool {
		_, rcode := lookupA(t, addr, name)
		return rcode == dns.RcodeNameError
	})
	t.Logf("killed process's record left DNS %v after the kill (lease TTL %v)", took.Round(time.Millisecond), lease)
}

// A stopped process revokes its lease: its record leaves DNS at once, long before the TTL.
func TestRegisterStoppedLeavesDNSAtOnce(t *testing.T) {
	const (
		p    = "/regstop"
		name = "db.example.local."
	)
	addr := startDNS(t, p)
	cmd := registerProcess(t, p, name, "--host", "10.9.0.1", "--lease", "60s")
	wait.For(t, 10*time.Second, "registered record in DNS", func() bool {
		as, _ := lookupA(t, addr, name)
		return len(as) == 1
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("register after SIGTERM: %v, want exit 0", err)
	}
	if got := keys(t, p+"/"); len(got) != 0 {
		t.Errorf("keys %v left after SIGTERM", got)
	}
	wait.For(t, 10*time.Second, "record gone from DNS after SIGTERM", func() bool {
		_, rcode := lookupA(t, addr, name)
		return rcode == dns.RcodeNameError
	})
}

func TestRegisterRefusesBadRecord(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"x.example.local"}, "needs --host or --text"},
		{[]string{"x.example.local", "--host", "999.1.1.1"}, "invalid_host"},
		{[]string{"*.example.local", "--host", "10.0.0.1"}, "cannot be registered"},
	} {
		code, _, errOut := ctl(t, "/regbad", append([]string{"register"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("register %v: exit %d, %q; want 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// The connection flags reach etcd as etcdctl's do: TLS with a client certificate, and a
// user given as NAME:PASSWORD.
func TestTLSAndAuthFlags(t *testing.T) {
	srv, tf, admin := devetcd.StartTLSFor(t)
	if err := devetcd.EnableAuth(context.Background(), admin, "rootpw"); err != nil {
		t.Fatal(err)
	}

	base := []string{"--endpoints", srv.Endpoint, "--dial-timeout", "2s", "--command-timeout", "3s"}
	certs := []string{"--cacert", tf.CA, "--cert", tf.ClientCert, "--key", tf.ClientKey}
	plain := "127.0.0.1:" + strconv.Itoa(srv.Port())
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
		want string // in the error
	}{
		{"certificates and user:password", append(append(slices.Clone(base), certs...), "--user", "root:rootpw"), true, ""},
		{"certificates, --user and --password", append(append(slices.Clone(base), certs...), "--user", "root", "--password", "rootpw"), true, ""},
		{"wrong password", append(append(slices.Clone(base), certs...), "--user", "root:nope"), false, "authentication failed, invalid user ID or password"},
		{"no client certificate", append(slices.Clone(base), "--cacert", tf.CA, "--user", "root:rootpw"), false,
			"the TLS handshake with " + plain + " fails: remote error: tls: certificate required"},
		{"no TLS", []string{"--endpoints", plain, "--dial-timeout", "2s", "--command-timeout", "3s", "--user", "root:rootpw"}, false,
			plain + " speaks TLS: give --cacert"},
	} {
		var o, e bytes.Buffer
		code := run(append(tc.args, "check"), &o, &e)
		t.Logf("%s: exit %d: %s", tc.name, code, strings.TrimSpace(e.String()))
		if (code == 0) != tc.ok || !strings.Contains(e.String(), tc.want) {
			t.Errorf("%s: exit %d, want success %v and %q\n%s%s", tc.name, code, tc.ok, tc.want, o.String(), e.String())
		}
	}
}

// A registration with an HTTP check: the record leaves DNS while the service's health
// endpoint fails and comes back when it recovers; ls shows the check's state meanwhile.
func TestRegisterWithHealthCheck(t *testing.T) {
	const (
		p    = "/reghealth"
		name = "api.example.local."
	)
	var failing atomic.Bool
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		}
	}))
	defer health.Close()
	addr := startDNS(t, p)
	registerProcess(t, p, name, "--host", "10.9.1.1", "--lease", "30s",
		"--check-http", health.URL, "--check-interval", "100ms", "--check-failures", "2")
	inDNS := func() bool {
		as, _ := lookupA(t, addr, name)
		return len(as) == 1
	}
	wait.For(t, 10*time.Second, "registered record in DNS", inDNS)
	leased := keys(t, p+"/")

	failing.Store(true)
	wait.For(t, 10*time.Second, "record gone from DNS while the check fails", func() bool { return !inDNS() })
	code, out, _ := ctl(t, p, "ls", name, "--zone", "example.local")
	if code != 1 || !strings.Contains(out, "check failing since") || !strings.Contains(out, "503") {
		t.Errorf("ls while the check fails: exit %d, %q; want 1 and the failing check", code, out)
	}
	if got := keys(t, p+"/"); len(got) != 0 {
		t.Errorf("keys %v while the check fails, want the record withdrawn", got)
	}
	// The lease is kept: the check state lives under it.
	state, err := testEtcd.Client().Get(context.Background(), register.HealthKey(leased[0]))
	if err != nil || len(state.Kvs) != 1 {
		t.Fatalf("check state of %s: %v, %v", leased[0], state, err)
	}
	if ttl, err := testEtcd.Client().TimeToLive(context.Background(), clientv3.LeaseID(state.Kvs[0].Lease)); err != nil || ttl.TTL <= 0 {
		t.Errorf("lease of the withdrawn record: %v, %v; want it alive", ttl, err)
	}

	failing.Store(false)
	wait.For(t, 10*time.Second, "record back in DNS once the check passes", inDNS)
	if got := keys(t, p+"/"); !slices.Equal(got, leased) {
		t.Errorf("keys %v after recovery, want %v", got, leased)
	}
	if code, out, _ := ctl(t, p, "ls", name, "--zone", "example.local"); code != 0 || !strings.Contains(out, "check passing since") {
		t.Errorf("ls after recovery: exit %d, %q; want 0 and the passing check", code, out)
	}
}

func TestRegisterRefusesBadCheck(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--check-http", "http://127.0.0.1:1/", "--check-tcp", "127.0.0.1:1"}, "one of --check-http"},
		{[]string{"--check-tcp", "127.0.0.1:1", "--check-interval", "0s"}, "must be positive"},
		{[]string{"--check-exec", "true", "--check-failures", "0"}, "must be positive"},
		{[]string{"--check-exec", ""}, "needs a command"},
		{[]string{"--check-tcp", "nohostport"}, "want HOST:PORT"},
		{[]string{"--check-http", "127.0.0.1:8080/healthz"}, "want an http:// or https:// URL"},
		{[]string{"--check-http", "ftp://127.0.0.1/"}, "want an http:// or https:// URL"},
		{[]string{"--check-interval", "5s"}, "needs a check"},
		{[]string{"--lease", "0s"}, "--lease must be positive"},
	} {
		args := append([]string{"register", "x.example.local", "--host", "10.0.0.1"}, tc.args...)
		code, _, errOut := ctl(t, "/regbadcheck", args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("register %v: exit %d, %q; want 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
