package kubernetes_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerfile checks that the image's build runs the tests CI runs, and that the image
// fits the Deployment.
func TestDockerfile(t *testing.T) {
	e := loadExample(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// The first make target of .ci/run, the tests; then it builds and runs the image itself
	// (make image), which the image's own build cannot.
	var targets []string
	for _, line := range strings.Split(read(".ci/run"), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "make" {
			targets = append(targets, makeTarget(f))
		}
	}
	if len(targets) == 0 {
		t.Fatal(".ci/run runs no make target")
	}
	ci := targets[0]
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ci) + `:`).MatchString(read("Makefile")) {
		t.Errorf("Makefile has no target %q", ci)
	}

	stages := parseDockerfile(read("Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build and an image stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	goMod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(read("go.mod"))
	goImage := regexp.MustCompile(`^golang:(\d+\.\d+)`).FindStringSubmatch(build.from)
	if goMod == nil || goImage == nil || goMod[1] != goImage[1] {
		t.Errorf("build stage FROM %s, want the Go of go.mod (%q)", build.from, goMod)
	}
	copied, tested, static := -1, -1, false
	for i, in := range build.instrs {
		words := strings.Fields(in.args)
		switch {
		case in.cmd == "COPY" && slices.Equal(words, []string{".", "."}):
			copied = i
		case in.cmd == "RUN" && slices.Contains(words, "make"):
			if makeTarget(words[slices.Index(words, "make"):]) == ci {
				tested = i
			}
		case in.cmd == "RUN" && strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "-trimpath") &&
			strings.Contains(in.args, "./cmd/coredns") && strings.Contains(in.args, "setcap cap_net_bind_service=+ep"):
			static = true
		}
	}
	if tested < 0 || copied < 0 || tested < copied {
		t.Errorf("build stage: want `RUN make %s` (the target of .ci/run) after `COPY . .`", ci)
	}
	if !static {
		t.Error("build stage: want a static (CGO_ENABLED=0, -trimpath) build of ./cmd/coredns with cap_net_bind_service")
	}

	exposed := map[string]bool{}
	var entrypoint []string
	copiedBinary := false
	for _, in := range final.instrs {
		switch in.cmd {
		case "EXPOSE":
			for _, p := range strings.Fields(in.args) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				exposed[strings.ToUpper(p)] = true
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entrypoint); err != nil {
				t.Errorf("ENTRYPOINT %s: want the exec form: %v", in.args, err)
			}
		case "COPY":
			w := strings.Fields(in.args)
			copiedBinary = copiedBinary || (slices.Contains(w, "--from="+build.name) && w[len(w)-1] == "/coredns")
		}
	}
	if !slices.Equal(entrypoint, []string{"/coredns"}) {
		t.Errorf("image: ENTRYPOINT %q, want [\"/coredns\"]", entrypoint)
	}
	if !copiedBinary {
		t.Errorf("image: no COPY --from=%s of the binary to /coredns", build.name)
	}
	c := e.coreDNS(t)
	want := []string{"8080/TCP", "8181/TCP"} // the probes
	for _, p := range c.Ports {
		want = append(want, fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol))
	}
	for _, p := range want {
		if !exposed[p] {
			t.Errorf("image does not EXPOSE %s, which the Deployment uses", p)
		}
	}
}

// TestImageDocumented checks that the README's "Build the image" gives every build argument
// of the Dockerfile with its default, and that make image KEEP=1 keeps the image under the
// name the Deployment runs, in the archive the README loads.
func TestImageDocumented(t *testing.T) {
	image := loadExample(t).coreDNS(t).Image
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	readme := read("README.md")
	_, section, ok := strings.Cut(readme, "\n## Build the image\n")
	if !ok {
		t.Fatal("README.md has no section \"Build the image\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")

	args := regexp.MustCompile(`(?m)^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?`).FindAllStringSubmatch(read("../../Dockerfile"), -1)
	if len(args) == 0 {
		t.Fatal("Dockerfile: no ARG")
	}
	for _, a := range args {
		def := "empty"
		if a[2] != "" {
			def = "`" + a[2] + "`"
		}
		if row := "| `" + a[1] + "` | " + def + " |"; !strings.Contains(section, row) {
			t.Errorf("README.md, Build the image: no row %q for the Dockerfile's ARG %s", row, a[1])
		}
	}

	makefile := read("../../Makefile")
	for _, v := range []struct{ name, want string }{{"IMAGE", image}, {"IMAGE_ARCHIVE", ""}} {
		m := regexp.MustCompile(`(?m)^` + v.name + ` \?= (\S+)$`).FindStringSubmatch(makefile)
		switch {
		case m == nil:
			t.Errorf("Makefile: no %s ?= for make image", v.name)
		case v.want != "" && m[1] != v.want:
			t.Errorf("Makefile: make image KEEP=1 keeps the image as %s, deployment.yaml runs %s", m[1], v.want)
		case !strings.Contains(section, m[1]):
			t.Errorf("README.md, Build the image: %s (make image's %s) not named", m[1], v.name)
		}
	}
}

// makeTarget returns the target of a make command line, after any flags.
func makeTarget(words []string) string {
	for _, w := range words[1:] {
		if !strings.HasPrefix(w, "-") {
			return w
		}
	}
	return ""
}

type dockerStage struct {
	from, name string
	instrs     []dockerInstr
}

type dockerInstr struct{ cmd, args string }

// parseDockerfile splits a Dockerfile into stages of instructions, with continuation lines
// joined and comments dropped; a FROM names its image with the defaults of the ARGs
// before the first FROM.
func parseDockerfile(text string) []dockerStage {
	var (
		stages []dockerStage
		line   strings.Builder
		args   = map[string]string{}
	)
	add := func(s string) {
		cmd, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
		cmd, rest = strings.ToUpper(cmd), strings.TrimSpace(rest)
		if cmd == "ARG" && len(stages) == 0 {
			name, value, _ := strings.Cut(rest, "=")
			args[name] = value
			return
		}
		if cmd == "FROM" {
			rest = os.Expand(rest, func(name string) string { return args[name] })
			f := slices.DeleteFunc(strings.Fields(rest), func(w string) bool { return strings.HasPrefix(w, "--") })
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, dockerInstr{cmd, rest})
		}
	}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(l, `\`); ok {
			line.WriteString(rest + " ")
			continue
		}
		line.WriteString(l)
		add(line.String())
		line.Reset()
	}
	return stages
}
