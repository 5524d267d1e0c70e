// Package plugincfg adds etcdsd to CoreDNS from CoreDNS's own module source with the commands
// README.md gives users, run as written.
package plugincfg

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// readmeSection is the README's section whose first fenced block, an sh session, adds
// etcdsd to CoreDNS's source; pathPlaceholder in it stands for this repository's directory.
const (
	readmeSection   = "## Building your own CoreDNS"
	pathPlaceholder = "/path/to/etcdsd"
)

// CoreDNS's source, after the commands of the README's "Building your own CoreDNS" block (the
// line of plugin.cfg.example added to its plugin.cfg, the replace, `go get` of etcdsd, `go
// generate` and `go build`), builds a CoreDNS that lists etcdsd among its plugins; each
// command prints what the block shows; no module CoreDNS requires changes version, and the
// only modules added are etcdsd and what its plugin package needs (none of etcd's server,
// etcdctl, staticcheck or the Kubernetes API types).
func TestCoreDNSBuildsWithEtcdsd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds CoreDNS")
	}
	_, self, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(self), "..", "..")
	readme := string(readFile(t, filepath.Join(repo, "README.md")))
	steps := readmeSteps(t, readme)
	version := requiredVersion(t, filepath.Join(repo, "go.mod"), "github.com/coredns/coredns")
	out := goCmd(t, repo, "list", "-m", "-json", "github.com/coredns/coredns@"+version)
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("CoreDNS %s not in the module cache: %v %s", version, err, out)
	}
	src := filepath.Join(t.TempDir(), "coredns")
	if out, err := exec.Command("cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		t.Fatalf("copying CoreDNS: %v %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	before := requirements(t, filepath.Join(src, "go.mod"))
	cfg := string(readFile(t, filepath.Join(src, "plugin.cfg")))
	if !strings.Contains(cfg, "\netcd:etcd\n") {
		t.Fatal("CoreDNS's plugin.cfg has no etcd:etcd line")
	}

	for _, s := range steps {
		cmd := exec.Command("sh", "-c", strings.ReplaceAll(s.cmd, pathPlaceholder, shellQuote(repo)))
		cmd.Dir = src
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("README: $ %s: %v\n%s%s", s.cmd, err, stdout.String(), stderr.String())
		}
		if got, want := strings.TrimSuffix(stdout.String(), "\n"), strings.Join(s.out, "\n"); got != want {
			t.Errorf("README: $ %s printed\n%s\nthe README shows\n%s", s.cmd, got, want)
		}
	}

	// plugin.cfg.example's line went where it says: right after etcd's, and nothing else changed.
	line := strings.TrimSpace(string(readFile(t, filepath.Join(repo, "plugin.cfg.example"))))
	line = line[strings.LastIndex(line, "\n")+1:]
	want := strings.Replace(cfg, "\netcd:etcd\n", "\netcd:etcd\n"+line+"\n", 1)
	if got := string(readFile(t, filepath.Join(src, "plugin.cfg"))); got != want {
		t.Errorf("plugin.cfg after the README's commands:\n%s\nwant CoreDNS's with %q after etcd:etcd", got, line)
	}
	plugins, err := exec.Command(filepath.Join(src, "coredns"), "-plugins").CombinedOutput()
	if err != nil || !slices.Contains(strings.Fields(string(plugins)), "etcdsd") {
		t.Fatalf("coredns -plugins: %v, etcdsd missing:\n%s", err, plugins)
	}

	after := requirements(t, filepath.Join(src, "go.mod"))
	for path, v := range before {
		if after[path] != v {
			t.Errorf("adding etcdsd changed CoreDNS's requirement %s from %s to %s", path, v, after[path])
		}
	}
	for path, v := range after {
		if _, ok := before[path]; !ok {
			t.Logf("added: %s %s", path, v)
			if path != "github.com/etcdsd/etcdsd" && !strings.Contains(section(readme), "`"+path+"`") {
				t.Errorf("README.md %s does not name `%s`, a module etcdsd adds to CoreDNS's go.mod", readmeSection, path)
			}
		}
	}
	graph := string(goCmd(t, src, "mod", "graph"))
	for _, heavy := range []string{"go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3", "honnef.co/go/tools", "k8s.io/api"} {
		for _, edge := range strings.Split(graph, "\n") {
			if strings.HasPrefix(edge, "github.com/etcdsd/etcdsd@v0.0.0 "+heavy+"@") {
				t.Errorf("etcdsd brings %s into CoreDNS's module graph", strings.Fields(edge)[1])
			}
		}
	}
}

func goCmd(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requirements returns the module versions a go.mod requires, as go mod edit reads them.
func requirements(t *testing.T, path string) map[string]string {
	t.Helper()
	var f struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(goCmd(t, filepath.Dir(path), "mod", "edit", "-json", path), &f); err != nil {
		t.Fatal(err)
	}
	reqs := map[string]string{}
	for _, r := range f.Require {
		reqs[r.Path] = r.Version
	}
	return reqs
}

func requiredVersion(t *testing.T, gomod, module string) string {
	t.Helper()
	v, ok := requirements(t, gomod)[module]
	if !ok {
		t.Fatalf("%s does not require %s", gomod, module)
	}
	return v
}

// step is a command of an sh block and the output the block shows after it.
type step struct {
	cmd string
	out []string
}

// readmeSteps returns the commands of the first fenced block of the README's readmeSection,
// which must be an sh block that names pathPlaceholder: each "$ " line a command, the
// lines up to the next one what it prints.
func readmeSteps(t *testing.T, readme string) []step {
	t.Helper()
	section := section(readme)
	if section == "" {
		t.Fatalf("README.md has no section %q", readmeSection)
	}
	lines := strings.Split(section, "\n")
	open := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "~~~") || strings.HasPrefix(l, "```") })
	if open < 0 || first(strings.Fields(lines[open][3:])) != "sh" {
		t.Fatalf("README.md %s: the first fenced block is not an sh block of the commands", readmeSection)
	}
	if !strings.Contains(section, pathPlaceholder) {
		t.Fatalf("README.md %s: no %s for this repository's directory", readmeSection, pathPlaceholder)
	}
	var steps []step
	for _, l := range lines[open+1:] {
		if strings.HasPrefix(l, lines[open][:3]) {
			return steps
		}
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			steps = append(steps, step{cmd: cmd})
			continue
		}
		if len(steps) == 0 {
			t.Fatalf("README.md %s: %q before the first command", readmeSection, l)
		}
		steps[len(steps)-1].out = append(steps[len(steps)-1].out, l)
	}
	t.Fatalf("README.md %s: the sh block is not closed", readmeSection)
	return nil
}

// section returns the text of the README's readmeSection after its heading, "" if it has none.
func section(readme string) string {
	_, s, ok := strings.Cut(readme, "\n"+readmeSection+"\n")
	if !ok {
		return ""
	}
	s, _, _ = strings.Cut(s, "\n## ")
	return s
}

func first(words []string) string {
	if len(words) == 0 {
		return ""
	}
	return words[0]
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
