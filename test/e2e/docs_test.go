package e2e

// The commands of README.md and docs/*.md, run as they stand against the stack of `make
// run`, their output compared with what the page shows.
//
// A command block is a fenced block whose info string names it, `~~~ sh test=NAME`: its
// lines that start with "$ " are commands (a line ending in "\" goes on on the next), the
// lines after a command, up to the next one, what it prints. A `~~~ txt test=NAME` block is
// what a command started earlier (one that runs until Ctrl-C) prints later. A shown output
// is compared as a multiset of lines, whitespace runs taken as one space, so that DNS
// answers in any order match; a "..." line stands for any lines, and makes the shown lines
// a part of the output rather than all of it. Lease IDs and timestamps, which differ from
// run to run, match any other. A command that shows no output must exit 0; one that does
// passes on its output (`etcdsdctl check` exits 1 when it prints a skipped value). dig, ls
// and curl commands are asked again for a few seconds until their output matches, as a
// change takes a moment to reach DNS.
//
// The stack is what the Makefile's run target runs, as `make -n run` prints it (cmd/devstack
// with the repository's Corefile and testdata/seed.records), on free ports instead of 2379,
// 1053, 1054, 8181 and 9153 (and 8081 for a health endpoint): ports are the only text
// changed, in the recipe, in a command and in its output, from `make run`'s to the test's. The commands run in a folder whose bin/ holds the binaries; there
// bin/etcdctl takes the stack's etcd from ETCDCTL_ENDPOINTS, and bin/etcdsdctl, which reads
// no environment, is a script that puts --endpoints of the stack's etcd before its
// arguments.
//
// Every command block of the pages is run by the test ranBy names, or listed in notRun
// with the reason it is not (TestDocCommandsAccountedFor).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdsd/etcdsd/internal/devetcd"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ranBy names the test that runs each command block.
var ranBy = map[string]string{
	// README.md
	"make-run":     "TestReadmeCommands", // and the start of every test here
	"seed":         "TestReadmeCommands",
	"walk-through": "TestReadmeCommands",
	"additional":   "TestReadmeCommands",
	"put":          "TestReadmeCommands",
	"builtin":      "TestReadmeCommands",
	"metrics":      "TestReadmeCommands",
	"ready":        "TestReadmeCommands",
	// docs/zone-transfer.md
	"axfr": "TestReadmeCommands",
	// docs/etcdsdctl.md
	"register":         "TestEtcdsdctlDocCommands",
	"register-dig":     "TestEtcdsdctlDocCommands",
	"register-stopped": "TestEtcdsdctlDocCommands",
	"register-gone":    "TestEtcdsdctlDocCommands",
	"health-endpoint":  "TestEtcdsdctlDocCommands",
	"register-check":   "TestEtcdsdctlDocCommands",
	"check-passing":    "TestEtcdsdctlDocCommands",
	"check-failing":    "TestEtcdsdctlDocCommands",
	"check-withdrawn":  "TestEtcdsdctlDocCommands",
	"check-back":       "TestEtcdsdctlDocCommands",
	"check-back-dig":   "TestEtcdsdctlDocCommands",
	"check":            "TestEtcdsdctlDocCommands",
	// docs/security.md
	"role":         "TestSecurityDocCommands",
	"auth-enable":  "TestSecurityDocCommands",
	"role-ls":      "TestSecurityDocCommands",
	"auth-disable": "TestSecurityDocCommands",
}

// notRun are the command blocks no test here runs, and why.
var notRun = map[string]string{
	"make-test":  "make test is the run these tests are part of",
	"grpc-proxy": "it names a three-member etcd cluster at 10.0.0.1-3; TestThroughGRPCProxy (test/faults) runs etcd's gRPC proxy of every release against a cluster of its own",
}

// notRunSections are the sections whose command blocks carry no test= name, and why.
var notRunSections = map[string]string{
	"README.md#building-your-own-coredns": "it changes and builds a checkout of CoreDNS's source: TestCoreDNSBuildsWithEtcdsd (test/plugincfg) runs this block's commands in a copy of CoreDNS's module source and compares their output",
	// The Kubernetes example's commands need a cluster, a registry or root.
	"examples/kubernetes/README.md#build-the-image":   "docker, kind, ctr and skopeo need a daemon, a cluster or a registry, and make image needs root and buildah; CI runs make image after make test, and TestDockerfile (examples/kubernetes) checks the Dockerfile",
	"examples/kubernetes/README.md#create-the-secret": "kubectl needs a cluster; TestManifestsDecodeStrictly (examples/kubernetes) decodes etcd-client-tls.yaml, the Secret's shape",
	"examples/kubernetes/README.md#apply":             "kubectl needs a cluster; TestManifestsDecodeStrictly and TestManifestsAgree (examples/kubernetes) decode the manifests into the Kubernetes API types and check they fit, TestEtcdsdServerBlockBoots boots the ConfigMap's etcdsd stanza against a TLS etcd",
	"examples/kubernetes/README.md#install-with-helm": "helm needs a cluster and the chart repository; TestHelmValues (examples/kubernetes) renders the values' Corefile as the chart does",
}

// docFiles are the pages whose commands are run or listed as not run, relative to the
// repository's root.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md", "examples/kubernetes/README.md"}
	for _, p := range pages {
		files = append(files, filepath.Join("docs", filepath.Base(p)))
	}
	return files
}

// docBlock is one fenced block of a page.
type docBlock struct {
	file    string // relative to the repository's root
	line    int    // of the opening fence
	section string // file#anchor of the heading above it
	lang    string // the info string's first word
	name    string // its test= value
	steps   []docStep
	lines   []string // the block's lines
}

// docStep is a command and the output the page shows for it.
type docStep struct {
	cmd  string
	want []string
}

func (b *docBlock) String() string { return fmt.Sprintf("%s:%d (%s)", b.file, b.line, b.name) }

// hasCommands reports whether the block holds "$ " lines.
func (b *docBlock) hasCommands() bool { return len(b.steps) > 0 }

// readDocBlocks parses every fenced block of the pages.
func readDocBlocks(t *testing.T) []*docBlock {
	t.Helper()
	var blocks []*docBlock
	for _, file := range docFiles(t) {
		b, err := os.ReadFile(filepath.Join("../..", file))
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, parseBlocks(file, string(b))...)
	}
	return blocks
}

var testName = regexp.MustCompile(`(?:^|\s)test=(\S+)`)

func parseBlocks(file, text string) []*docBlock {
	var (
		blocks  []*docBlock
		cur     *docBlock
		fence   string
		section = file
	)
	for i, line := range strings.Split(text, "\n") {
		if cur == nil {
			if strings.HasPrefix(line, "#") {
				section = file + "#" + anchor(strings.TrimLeft(line, "# "))
				continue
			}
			for _, f := range []string{"~~~", "```"} {
				if strings.HasPrefix(line, f) {
					info := strings.TrimSpace(strings.TrimLeft(line, f[:1]))
					cur = &docBlock{file: file, line: i + 1, section: section}
					fence = line[:len(line)-len(strings.TrimLeft(line, f[:1]))]
					if fields := strings.Fields(info); len(fields) > 0 {
						cur.lang = fields[0]
					}
					if m := testName.FindStringSubmatch(info); m != nil {
						cur.name = m[1]
					}
				}
			}
			continue
		}
		if strings.HasPrefix(line, fence) && strings.TrimSpace(strings.TrimLeft(line, fence[:1])) == "" {
			cur.steps = steps(cur.lines)
			blocks = append(blocks, cur)
			cur = nil
			continue
		}
		cur.lines = append(cur.lines, line)
	}
	return blocks
}

// steps splits a block's lines into commands and the output shown after each.
func steps(lines []string) []docStep {
	var out []docStep
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if !strings.HasPrefix(line, "$ ") {
			if len(out) > 0 {
				out[len(out)-1].want = append(out[len(out)-1].want, line)
			}
			continue
		}
		cmd := strings.TrimPrefix(line, "$ ")
		for strings.HasSuffix(cmd, `\`) && i+1 < len(lines) {
			i++
			cmd += "\n" + lines[i]
		}
		out = append(out, docStep{cmd: cmd})
	}
	return out
}

// anchor is the fragment GitHub gives a heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every command block of README.md and docs/*.md is run by a test here or listed as not
// run, with its reason; every block these lists name exists.
func TestDocCommandsAccountedFor(t *testing.T) {
	named := map[string]*docBlock{}
	for _, b := range readDocBlocks(t) {
		if b.name == "" {
			if reason, ok := notRunSections[b.section]; ok {
				t.Logf("not run: %s: %s", b, reason)
				continue
			}
			if b.lang == "sh" || b.hasCommands() {
				t.Errorf("%s: a command block with no test= name", b)
			}
			continue
		}
		if other, ok := named[b.name]; ok {
			t.Errorf("%s: test=%s is also %s", b, b.name, other)
		}
		named[b.name] = b
		_, ran := ranBy[b.name]
		reason, skipped := notRun[b.name]
		switch {
		case ran && skipped:
			t.Errorf("%s is both run and listed as not run", b)
		case !ran && !skipped:
			t.Errorf("%s: no test runs it, and notRun does not say why", b)
		case skipped:
			t.Logf("not run: %s: %s", b, reason)
		}
		if b.lang == "sh" && !b.hasCommands() {
			t.Errorf("%s: an sh block with no \"$ \" command", b)
		}
		if b.lang != "sh" && b.hasCommands() {
			t.Errorf("%s: commands in a %s block: make it sh", b, b.lang)
		}
	}
	for _, list := range []map[string]string{ranBy, notRun} {
		for name := range list {
			if named[name] == nil {
				t.Errorf("no block of the pages is test=%s", name)
			}
		}
	}
	for section := range notRunSections {
		found := false
		for _, b := range readDocBlocks(t) {
			found = found || b.section == section
		}
		if !found {
			t.Errorf("notRunSections names %s, which has no block", section)
		}
	}
	// The walk-through's records are the ones make run loads.
	seed, err := os.ReadFile("../../testdata/seed.records")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(string(seed), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	var got []string
	put := regexp.MustCompile(`^bin/etcdctl put (\S+) '(.*)'$`)
	for _, st := range named["seed"].steps {
		m := put.FindStringSubmatch(st.cmd)
		if m == nil {
			t.Fatalf("%s: %q is no etcdctl put of a record", named["seed"], st.cmd)
		}
		got = append(got, m[1]+" "+m[2])
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s puts\n%s\nbut testdata/seed.records holds\n%s", named["seed"], strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// docStack is `make run`'s stack, started by the Makefile's recipe on ports of its own,
// and the folder the pages' commands run in.
type docStack struct {
	blocks  map[string]*docBlock
	used    map[string]bool
	dir     string            // the commands' working directory
	ports   map[string]string // make run's port: the test's
	etcd    string            // the stack's etcd endpoint
	dnsAddr string
	bins    map[string]string // the binaries bin/ stands for
	env     []string
	out     *devetcd.Buffer // devstack's and CoreDNS's output
}

// makeRunPorts are the ports on 127.0.0.1 the pages' commands name: make run's (etcd,
// etcdsd, the built-in etcd plugin, ready, prometheus) and the health endpoint's.
var makeRunPorts = []string{"2379", "1053", "1054", "8181", "9153", "8081"}

// needTool skips t when a command the pages run is missing, but fails it in CI, where
// make test's doctools target installs them.
func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI runs the pages' commands, and %s is missing (%v): make doctools installs it", tool, err)
		}
		t.Skipf("the pages' commands need %s (make doctools installs it): %v", tool, err)
	}
}

// startMakeRun starts the stack as the Makefile's run target does and checks what the
// page's make-run block shows of its output.
func startMakeRun(t *testing.T) *docStack {
	t.Helper()
	for _, tool := range []string{"make", "dig", "curl"} {
		needTool(t, tool)
	}
	s := &docStack{blocks: map[string]*docBlock{}, used: map[string]bool{}, dir: t.TempDir()}
	for _, b := range readDocBlocks(t) {
		if b.name != "" {
			s.blocks[b.name] = b
		}
	}
	t.Cleanup(func() {
		if t.Failed() || t.Skipped() {
			return
		}
		for name, test := range ranBy {
			if test == t.Name() && !s.used[name] {
				t.Errorf("%s did not run %s, which ranBy gives it", t.Name(), s.blocks[name])
			}
		}
	})
	s.binaries(t)
	for _, link := range []string{"Corefile", "testdata"} {
		abs, err := filepath.Abs(filepath.Join("../..", link))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(s.dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	block := s.blocks["make-run"] // every test here starts with it
	if block == nil {
		t.Fatal("no block of the pages is test=make-run")
	}
	s.used["make-run"] = true
	if len(block.steps) != 1 || block.steps[0].cmd != "make run" {
		t.Fatalf("%s: want the one command make run", block)
	}
	// A port found free can be taken before the stack binds it; then devstack exits, and
	// gets another try with new ports.
	for try := 0; ; try++ {
		s.ports = map[string]string{}
		for _, p := range makeRunPorts {
			s.ports[p] = strconv.Itoa(devetcd.FreePortFor(t))
		}
		dns, _ := strconv.Atoi(s.ports["1053"])
		s.ports["1054"] = strconv.Itoa(dns + 1) // devstack's built-in plugin port: the next one
		s.etcd = "127.0.0.1:" + s.ports["2379"]
		s.dnsAddr = "127.0.0.1:" + s.ports["1053"]
		if s.start(t, block.steps[0].want) {
			break
		}
		if try == 2 {
			t.Fatal("make run's stack did not start")
		}
		os.RemoveAll(filepath.Join(s.dir, ".run"))
	}
	s.env = append(os.Environ(), "ETCDCTL_ENDPOINTS="+s.etcd)
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %q --endpoints %q \"$@\"\n", s.bins["etcdsdctl"], s.etcd)
	if err := os.WriteFile(filepath.Join(s.dir, "bin", "etcdsdctl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// binaries fills bin/ with the binaries make build makes: the ones the environment
// names (as make test sets it), or built. bin/etcdsdctl is left to startMakeRun.
func (s *docStack) binaries(t *testing.T) {
	t.Helper()
	bin := filepath.Join(s.dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	etcd, err := devetcd.CurrentBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	etcdctl := filepath.Join(filepath.Dir(etcd), "etcdctl") // make build puts it beside etcd
	if _, err := os.Stat(etcdctl); err != nil {
		etcdctl = filepath.Join(t.TempDir(), "etcdctl")
		build := exec.Command("go", "build", "-o", etcdctl, "go.etcd.io/etcd/etcdctl/v3")
		build.Dir = "../../test/tools" // the module that pins etcd
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building etcdctl: %v\n%s", err, out)
		}
	}
	s.bins = map[string]string{
		"coredns":   corednsBinary(t),
		"etcd":      etcd,
		"etcdctl":   etcdctl,
		"devstack":  binary(t, "ETCDSD_DEVSTACK", "devstack"),
		"etcdsdctl": binary(t, "ETCDSD_ETCDSDCTL", "etcdsdctl"),
	}
	for name, path := range s.bins {
		abs, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		s.bins[name] = abs
		if name != "etcdsdctl" {
			if err := os.Symlink(abs, filepath.Join(bin, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// makeRunRecipe returns what the Makefile's run target runs, as `make -n` prints it, with
// $(BIN) the test's bin/, and the devstack flags that name make run's ports.
func (s *docStack) makeRunRecipe(t *testing.T) string {
	t.Helper()
	args := []string{"-s", "-n", "-o", "build", "-C", "../..", "run", "BIN=" + filepath.Join(s.dir, "bin")}
	out, err := exec.Command("make", args...).Output()
	if err != nil {
		t.Fatalf("make %s: %v", strings.Join(args, " "), err)
	}
	recipe := strings.TrimSpace(strings.ReplaceAll(string(out), "\\\n", " "))
	if strings.Contains(recipe, "\n") || !strings.Contains(recipe, "/devstack ") {
		t.Fatalf("the run target no longer runs devstack in one command line:\n%s", recipe)
	}
	// A port flag devstack is not given has its default, which is make run's port too.
	for flag, port := range devstackPorts {
		if m := portFlag(flag).FindStringSubmatch(recipe); m != nil && m[1] != port {
			t.Fatalf("make run runs devstack with %s %s, where the pages' commands expect %s:\n%s", flag, m[1], port, recipe)
		}
	}
	return recipe
}

// devstackPorts are devstack's flags for make run's ports, and the ports.
var devstackPorts = map[string]string{"-etcd-port": "2379", "-dns-port": "1053", "-ready-port": "8181", "-metrics-port": "9153"}

func portFlag(flag string) *regexp.Regexp {
	return regexp.MustCompile(`(?:^|\s)` + regexp.QuoteMeta(flag) + `[\s=]+(\d+)\b`)
}

// onTestPorts is the recipe with the test's ports for make run's.
func (s *docStack) onTestPorts(recipe string) string {
	for flag, port := range devstackPorts {
		re := portFlag(flag)
		if re.MatchString(recipe) {
			recipe = re.ReplaceAllStringFunc(recipe, func(m string) string { return strings.TrimSuffix(m, port) + s.ports[port] })
		} else {
			recipe += " " + flag + " " + s.ports[port]
		}
	}
	return recipe
}

// start runs the run target's recipe on the test's ports and waits until its output shows
// want; false if it exited first.
func (s *docStack) start(t *testing.T, want []string) bool {
	t.Helper()
	cmd := exec.Command("sh", "-c", s.onTestPorts(s.makeRunRecipe(t)))
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the group
	s.out = &devetcd.Buffer{}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	kill := func(sig syscall.Signal) { syscall.Kill(-cmd.Process.Pid, sig) }
	want = s.subst(want)
	deadline := time.Now().Add(60 * time.Second)
	for !matches(want, lines(s.out.String()), true) {
		select {
		case <-exited:
			t.Logf("make run's stack exited while starting:\n%s", s.out)
			return false
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			kill(syscall.SIGKILL)
			<-exited
			t.Fatalf("make run's output after 60s:\n%s\nwant (from %s):\n%s", s.out, s.blocks["make-run"], strings.Join(want, "\n"))
		}
	}
	t.Cleanup(func() {
		kill(syscall.SIGINT) // Ctrl-C
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			kill(syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("make run's output:\n%s", s.out)
		}
	})
	return true
}

// block returns the named block and notes that the test ran it.
func (s *docStack) block(t *testing.T, name string) *docBlock {
	t.Helper()
	b := s.blocks[name]
	if b == nil {
		t.Fatalf("no block of the pages is test=%s", name)
	}
	if ranBy[name] != t.Name() {
		t.Fatalf("%s runs %s, which ranBy gives to %q", t.Name(), b, ranBy[name])
	}
	s.used[name] = true
	return b
}

var makeRunPort = regexp.MustCompile(`\b(` + strings.Join(makeRunPorts, "|") + `)\b`)

// subst turns make run's ports into the test's.
func (s *docStack) subst(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = makeRunPort.ReplaceAllStringFunc(l, func(p string) string { return s.ports[p] })
	}
	return out
}

// run runs every command of the named block in turn.
func (s *docStack) run(t *testing.T, name string) {
	t.Helper()
	b := s.block(t, name)
	if len(b.steps) == 0 {
		t.Fatalf("%s has no command", b)
	}
	for _, st := range b.steps {
		s.runStep(t, b, st)
	}
}

// retried are the commands that only read, asked again until their output matches.
var retried = regexp.MustCompile(`^(dig|curl|bin/etcdsdctl ls) `)

func (s *docStack) runStep(t *testing.T, b *docBlock, st docStep) {
	t.Helper()
	cmdline := s.subst([]string{st.cmd})[0]
	want := s.subst(st.want)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := s.command(ctx, cmdline)
		out, err := cmd.CombinedOutput()
		cancel()
		got := lines(string(out))
		switch {
		case len(nonEmpty(want)) == 0 && err == nil:
			t.Logf("%s: $ %s: exit 0", b, cmdline)
			return
		case len(nonEmpty(want)) == 0:
			t.Fatalf("%s: %s: %v\n%s", b, cmdline, err, out)
		case matches(want, got, false):
			t.Logf("%s: $ %s: %d lines as shown", b, cmdline, len(got))
			return
		case !retried.MatchString(cmdline) || time.Now().After(deadline):
			t.Fatalf("%s: %s (%v) printed\n%s\nwant\n%s", b, cmdline, err, out, strings.Join(want, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// command is cmdline for sh in the commands' folder.
func (s *docStack) command(ctx context.Context, cmdline string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Dir = s.dir
	cmd.Env = s.env
	if strings.Contains(cmdline, "--endpoints") {
		cmd.Env = slices.DeleteFunc(slices.Clone(s.env), func(e string) bool { return strings.HasPrefix(e, "ETCDCTL_ENDPOINTS=") })
	}
	return cmd
}

// background is a command of the pages that runs until Ctrl-C.
type background struct {
	block  *docBlock
	cmd    *exec.Cmd
	out    *devetcd.Buffer
	exited chan struct{}
}

// startBackground starts the named block's one command and waits until it has printed
// what the block shows.
func (s *docStack) startBackground(t *testing.T, name string) *background {
	t.Helper()
	b := s.block(t, name)
	if len(b.steps) != 1 {
		t.Fatalf("%s: want one command that runs until Ctrl-C", b)
	}
	cmd := s.command(context.Background(), s.subst([]string{b.steps[0].cmd})[0])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the group
	bg := &background{block: b, cmd: cmd, out: &devetcd.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = bg.out, bg.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(bg.exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-bg.exited
	})
	bg.wait(t, b, s.subst(b.steps[0].want))
	t.Logf("%s: $ %s: running, its first lines as shown", b, cmd.Args[2])
	return bg
}

// wait waits until the command's output holds want.
func (bg *background) wait(t *testing.T, from *docBlock, want []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !matches(want, lines(bg.out.String()), true) {
		select {
		case <-bg.exited:
			if matches(want, lines(bg.out.String()), true) {
				return
			}
			t.Fatalf("%s exited (%v); it printed\n%s\nwant (%s)\n%s", bg.block, bg.cmd.ProcessState, bg.out, from, strings.Join(want, "\n"))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed, after 30s,\n%s\nwant (%s)\n%s", bg.block, bg.out, from, strings.Join(want, "\n"))
		}
	}
}

// waitFor waits until the command's output holds the lines of the named txt block.
func (s *docStack) waitFor(t *testing.T, bg *background, name string) {
	t.Helper()
	b := s.block(t, name)
	if b.hasCommands() {
		t.Fatalf("%s: want the output of a running command, not commands", b)
	}
	bg.wait(t, b, s.subst(b.lines))
	t.Logf("%s: %s printed it", b, bg.block)
}

// interrupt sends Ctrl-C and waits until the command has ended.
func (bg *background) interrupt(t *testing.T) {
	t.Helper()
	syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-bg.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still runs 20s after Ctrl-C; it printed\n%s", bg.block, bg.out)
	}
}

// waitPort waits until something accepts connections on 127.0.0.1:port.
func waitPort(t *testing.T, port string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %s after 30s: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func nonEmpty(ls []string) []string {
	return slices.DeleteFunc(slices.Clone(ls), func(l string) bool { return strings.TrimSpace(l) == "" })
}

var (
	leaseID   = regexp.MustCompile(`\blease [0-9a-f]+\b`)
	timestamp = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
)

// normalize makes a line comparable: runs of white space one space, lease IDs and
// timestamps placeholders.
func normalize(l string) string {
	l = strings.Join(strings.Fields(l), " ")
	l = leaseID.ReplaceAllString(l, "lease ID")
	return timestamp.ReplaceAllString(l, "TIME")
}

// matches reports whether got is the output want shows: the same lines in any order or,
// when want has a "..." line or part is set, want's other lines among got's.
func matches(want, got []string, part bool) bool {
	var w []string
	for _, l := range nonEmpty(want) {
		if strings.TrimSpace(l) == "..." {
			part = true
			continue
		}
		w = append(w, normalize(l))
	}
	var g []string
	for _, l := range nonEmpty(got) {
		g = append(g, normalize(l))
	}
	slices.Sort(w)
	slices.Sort(g)
	if !part {
		return slices.Equal(w, g)
	}
	for _, l := range w { // a multiset subset: each line of got used once
		i := slices.Index(g, l)
		if i < 0 {
			return false
		}
		g = slices.Delete(g, i, i+1)
	}
	return true
}

func TestMatches(t *testing.T) {
	tests := []struct {
		want, got []string
		part, ok  bool
	}{
		{[]string{"a", "b"}, []string{"b", "a"}, false, true},
		{[]string{"a", "b"}, []string{"b", "a", "c"}, false, false},
		{[]string{"a", "...", "b"}, []string{"b", "x", "a", "c"}, false, true},
		{[]string{"a", "a"}, []string{"a", "b"}, true, false},
		{[]string{"x.  30  IN A 1.1.1.1"}, []string{"x.\t30\tIN\tA\t1.1.1.1"}, false, true},
		{[]string{"under lease 4420a213dc4b090a (ttl 10s) at 2026-11-29T20:53:59Z"}, []string{"under lease 1632a25055ee9d0c (ttl 10s) at 2026-12-07T11:48:59Z"}, false, true},
		{[]string{"(ttl 10s)"}, []string{"(ttl 9s)"}, false, false},
		{nil, []string{"anything"}, true, true},
	}
	for _, tc := range tests {
		if got := matches(tc.want, tc.got, tc.part); got != tc.ok {
			t.Errorf("matches(%q, %q, %v) = %v, want %v", tc.want, tc.got, tc.part, got, tc.ok)
		}
	}
}

// README.md's walk-through, Metrics and Ready, and docs/zone-transfer.md's AXFR.
func TestReadmeCommands(t *testing.T) {
	s := startMakeRun(t)
	s.run(t, "axfr") // first: its serial is the revision of make run's last put
	s.run(t, "walk-through")
	s.run(t, "additional")
	s.run(t, "builtin")
	s.run(t, "seed") // the same records put again
	s.run(t, "walk-through")
	s.run(t, "put")
	s.run(t, "metrics")
	s.run(t, "ready")
}

// docs/etcdsdctl.md: a registration stopped with Ctrl-C, one with a health check that
// fails and passes again, check and rm.
func TestEtcdsdctlDocCommands(t *testing.T) {
	needTool(t, "python3") // the health endpoint of docs/etcdsdctl.md is python3's http.server
	s := startMakeRun(t)
	reg := s.startBackground(t, "register")
	s.run(t, "register-dig")
	reg.interrupt(t)
	s.waitFor(t, reg, "register-stopped")
	s.run(t, "register-gone")

	health := s.startBackground(t, "health-endpoint")
	waitPort(t, s.ports["8081"])
	reg = s.startBackground(t, "register-check")
	s.run(t, "check-passing")
	health.interrupt(t)
	s.waitFor(t, reg, "check-failing")
	s.run(t, "check-withdrawn")
	s.startBackground(t, "health-endpoint")
	s.waitFor(t, reg, "check-back")
	s.run(t, "check-back-dig")
	reg.interrupt(t)

	s.run(t, "check")
}

// docs/security.md: the role and user made, auth enabled, etcdsdctl as that user, and
// make run's etcdsd, which has no credentials, answering meanwhile and catching up after.
func TestSecurityDocCommands(t *testing.T) {
	s := startMakeRun(t)
	s.run(t, "role")
	s.run(t, "auth-enable")
	s.run(t, "role-ls")
	web := []string{"1.1.1.1", "1.1.1.2", "1.1.1.3"}
	if answer, _ := askAt(t, s.dnsAddr, "_web._tcp.example.local.", dns.TypeA); !slices.Equal(answer, web) {
		t.Errorf("with auth on, make run's etcdsd answers %q, want %q from its index", answer, web)
	}
	// What the page says the log shows.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.out.String(), "Failed watching /skydns/local/example, retrying: ") ||
		!strings.Contains(s.out.String(), "etcdserver: user name is empty") {
		if time.Now().After(deadline) {
			t.Fatal("with auth on, make run's log shows no failed watch for want of a user name")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.run(t, "auth-disable")

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.etcd}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/skydns/local/example/_tcp/_web/web-server04", `{"host":"1.1.1.4","port":80}`); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(web), "1.1.1.4")
	deadline = time.Now().Add(60 * time.Second) // the watch's retries back off up to 30 s
	for {
		answer, _ := askAt(t, s.dnsAddr, "_web._tcp.example.local.", dns.TypeA)
		if slices.Equal(answer, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after auth disable, make run's etcdsd answers %q, want %q", answer, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
