// Package plugincfg adds etcdsd to CoreDNS the way the CoreDNS documentation tells users
// to add an external plugin, from CoreDNS's own module source.
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

// CoreDNS, with the line of plugin.cfg.example added to its plugin.cfg, `go get` of etcdsd,
// `go generate` and `go build`, lists etcdsd among its plugins; no module CoreDNS requires
// changes version, and the only modules added are etcdsd and what its plugin package needs
// (none of etcd's server, etcdctl, staticcheck or the Kubernetes API types).
func TestCoreDNSBuildsWithEtcdsd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds CoreDNS")
	}
	_, self, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(self), "..", "..")
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

	// plugin.cfg.example's line goes where it says: right after etcd's.
	line := strings.TrimSpace(string(readFile(t, filepath.Join(repo, "plugin.cfg.example"))))
	line = line[strings.LastIndex(line, "\n")+1:]
	cfg := string(readFile(t, filepath.Join(src, "plugin.cfg")))
	if !strings.Contains(cfg, "\netcd:etcd\n") {
		t.Fatal("CoreDNS's plugin.cfg has no etcd:etcd line")
	}
	cfg = strings.Replace(cfg, "\netcd:etcd\n", "\netcd:etcd\n"+line+"\n", 1)
	if err := os.WriteFile(filepath.Join(src, "plugin.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd(t, src, "mod", "edit", "-replace", "github.com/etcdsd/etcdsd="+repo)
	goCmd(t, src, "get", "github.com/etcdsd/etcdsd@v0.0.0")
	goCmd(t, src, "generate", "coredns.go")
	goCmd(t, src, "build", "-o", "coredns", ".")
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
