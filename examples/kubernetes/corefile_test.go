package kubernetes_test

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/etcdsd/etcdsd/internal/directive"
)

// TestCorefile parses the Corefile as CoreDNS does, with the plugin names of our build, and
// checks the rules that hold across server blocks.
func TestCorefile(t *testing.T) {
	e := loadExample(t)
	checkCorefileSyntax(t, e.configMap.Data["Corefile"])

	// The kubernetes plugin cannot start without a cluster, so TestEtcdsdServerBlockBoots
	// leaves it out; its options are checked only for syntax, as its parser would pull
	// client-go into every race build of make test.

	// health is process-wide: a second one would be a second endpoint the probe never asks.
	if n := len(e.corefile.plugins("health")); n != 1 {
		t.Errorf("%d health lines, want 1", n)
	}
	// Only the plugins of a block with ready report into /ready.
	for _, sb := range e.corefile {
		for _, name := range []string{"etcdsd", "kubernetes"} {
			if len(sb.plugins(name)) > 0 && len(sb.plugins("ready")) == 0 {
				t.Errorf("block %v: %s reports readiness only in a block with ready", sb.Keys, name)
			}
		}
	}
	// One /ready endpoint, and one monitor mode: CoreDNS keeps the mode of whichever block
	// it sets up last for all of them.
	readies := e.corefile.plugins("ready")
	for _, r := range readies {
		if !slices.Equal(r.Args, readies[0].Args) || r.blockString() != readies[0].blockString() {
			t.Errorf("ready lines differ: %q and %q", r.String(), readies[0].String())
		}
	}
}

func checkCorefileSyntax(t *testing.T, text string) {
	t.Helper()
	if err := directive.Register(); err != nil {
		t.Fatal(err)
	}
	if _, err := caddyfile.Parse("Corefile", strings.NewReader(text), dnsserver.Directives); err != nil {
		t.Errorf("Corefile: %v", err)
	}
}

// corefile is a Corefile as server blocks of plugins, each with its arguments and the lines
// of its block: enough for this example, whose Corefiles caddyfile.Parse checks as well.
type corefile []serverBlock

type serverBlock struct {
	Keys    []string
	Plugins []plugin
}

type plugin struct {
	Name  string
	Args  []string
	Block [][]string
}

// parseCorefile reads server blocks `KEYS... {`, each holding plugin lines `NAME ARGS...`,
// optionally opening a block of option lines; `#` starts a comment.
func parseCorefile(text string) (corefile, error) {
	var (
		cf corefile
		sb *serverBlock
		pl *plugin
	)
	for n, line := range strings.Split(text, "\n") {
		words := strings.Fields(line)
		if i := slices.IndexFunc(words, func(w string) bool { return strings.HasPrefix(w, "#") }); i >= 0 {
			words = words[:i]
		}
		if len(words) == 0 {
			continue
		}
		open := words[len(words)-1] == "{"
		if open {
			words = words[:len(words)-1]
		}
		switch {
		case slices.Equal(words, []string{"}"}) && !open:
			switch {
			case pl != nil:
				pl = nil
			case sb != nil:
				cf, sb = append(cf, *sb), nil
			default:
				return nil, fmt.Errorf("line %d: } without {", n+1)
			}
		case len(words) == 0:
			return nil, fmt.Errorf("line %d: { on a line of its own", n+1)
		case sb == nil:
			if !open {
				return nil, fmt.Errorf("line %d: want KEYS... {", n+1)
			}
			sb = &serverBlock{Keys: words}
		case pl != nil:
			if open {
				return nil, fmt.Errorf("line %d: blocks nested too deep", n+1)
			}
			pl.Block = append(pl.Block, words)
		default:
			sb.Plugins = append(sb.Plugins, plugin{Name: words[0], Args: words[1:]})
			if open {
				pl = &sb.Plugins[len(sb.Plugins)-1]
			}
		}
	}
	if sb != nil {
		return nil, fmt.Errorf("server block %v not closed", sb.Keys)
	}
	return cf, nil
}

func (cf corefile) String() string {
	var b strings.Builder
	for _, sb := range cf {
		fmt.Fprintf(&b, "%s {\n", strings.Join(sb.Keys, " "))
		for _, p := range sb.Plugins {
			for _, l := range strings.Split(strings.TrimSuffix(p.String(), "\n"), "\n") {
				b.WriteString("    " + l + "\n")
			}
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// normalized drops the dns:// scheme from the keys, CoreDNS's default.
func (cf corefile) normalized() corefile {
	out := slices.Clone(cf)
	for i := range out {
		out[i].Keys = slices.Clone(out[i].Keys)
		for j, k := range out[i].Keys {
			out[i].Keys[j] = strings.TrimPrefix(k, "dns://")
		}
	}
	return out
}

// plugins returns every stanza of the plugin name in any server block.
func (cf corefile) plugins(name string) []*plugin {
	var ps []*plugin
	for i := range cf {
		ps = append(ps, cf[i].plugins(name)...)
	}
	return ps
}

func (sb *serverBlock) plugins(name string) []*plugin {
	var ps []*plugin
	for i := range sb.Plugins {
		if sb.Plugins[i].Name == name {
			ps = append(ps, &sb.Plugins[i])
		}
	}
	return ps
}

func (p plugin) String() string {
	s := strings.Join(append([]string{p.Name}, p.Args...), " ")
	if len(p.Block) > 0 {
		s += " {\n" + p.blockString() + "}"
	}
	return s + "\n"
}

func (p plugin) blockString() string {
	var b strings.Builder
	for _, l := range p.Block {
		b.WriteString("    " + strings.Join(l, " ") + "\n")
	}
	return b.String()
}

// option returns the arguments of the block line that starts with name.
func (p *plugin) option(name string) ([]string, bool) {
	for _, l := range p.Block {
		if l[0] == name {
			return l[1:], true
		}
	}
	return nil, false
}

type key struct{ scheme, zone, port string }

// splitKey splits a server block key such as dns://example.local:53.
func splitKey(k string) key {
	var out key
	if i := strings.Index(k, "://"); i >= 0 {
		out.scheme, k = k[:i+3], k[i+3:]
	}
	if i := strings.LastIndex(k, ":"); i >= 0 {
		k, out.port = k[:i], k[i+1:]
	}
	out.zone = k
	return out
}

// listenPort returns the port of a plugin's [HOST]:PORT argument, or def without one.
func listenPort(args []string, def string) string {
	if len(args) == 0 {
		return def
	}
	_, port, err := net.SplitHostPort(args[0])
	if err != nil {
		return ""
	}
	return port
}
