package etcdsd

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	pkgtls "github.com/coredns/coredns/plugin/pkg/tls"
	"github.com/coredns/coredns/plugin/pkg/upstream"
	"github.com/coredns/coredns/plugin/transfer"
	"github.com/dustin/go-humanize"
	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/miekg/dns"
)

const defaultEndpoint = "http://localhost:2379"

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	stanzas, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	for _, e := range stanzas {
		joinGroup(c, e)
		c.OnStartup(func() error {
			e.xfer, _ = dnsserver.GetConfig(c).Handler("transfer").(*transfer.Transfer)
			return nil
		})
		c.OnStartup(e.OnStartup)
		c.OnShutdown(e.OnShutdown)
		dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
			e.Next = next
			return e
		})
	}
	return nil
}

// parse reads every etcdsd stanza of a server block. It only reads tokens: the etcd
// client and the watch are made in OnStartup.
func parse(c *caddy.Controller) ([]*Etcdsd, error) {
	var stanzas []*Etcdsd
	for c.Next() {
		e, err := parseStanza(c)
		if err != nil {
			return nil, err
		}
		stanzas = append(stanzas, e)
	}
	return stanzas, nil
}

func parseStanza(c *caddy.Controller) (*Etcdsd, error) {
	e := &Etcdsd{
		Options: index.Options{
			Now:         time.Now,
			PathPrefix:  "skydns",
			MinLeaseTTL: index.DefaultMinLeaseTTL,
			MaxLeaseTTL: index.DefaultMaxLeaseTTL,
			NegativeTTL: index.DefaultNegativeTTL,
			MaxAnswers:  index.DefaultMaxAnswers,
			Upstream:    upstream.New(),
		},
		StartupTimeout: defaultStartupTimeout,
		Verify:         defaultVerify,
		NotifyInterval: defaultNotifyInterval,
		IXFRJournal:    defaultJournal,
		AnswerCache:    index.DefaultAnswerCache,
		endpoints:      []string{defaultEndpoint},
	}
	args := c.RemainingArgs()
	e.Zones = plugin.OriginsFromArgsOrServerBlock(args, c.ServerBlockKeys)
	if err := checkZones(args, e.Zones, c.ServerBlockKeys); err != nil {
		return nil, c.Errf("%v", err)
	}

	for c.NextBlock() {
		opt := c.Val()
		switch opt {
		case "fallthrough":
			e.Fall.SetZonesFromArgs(c.RemainingArgs())
		case "path":
			args := c.RemainingArgs()
			if len(args) != 1 {
				return nil, usageErr(c, opt, "PATH")
			}
			e.PathPrefix = args[0]
		case "endpoint":
			args := c.RemainingArgs()
			if len(args) == 0 {
				return nil, usageErr(c, opt, "ENDPOINT...")
			}
			for _, ep := range args {
				warning, err := checkEndpoint(ep)
				if err != nil {
					return nil, c.Errf("endpoint: %v", err)
				}
				if warning != "" {
					log.Warningf("%s:%d: %s", c.File(), c.Line(), warning)
				}
			}
			e.endpoints = args
		case "credentials":
			args := c.RemainingArgs()
			if len(args) != 2 {
				return nil, usageErr(c, opt, "USERNAME PASSWORD")
			}
			e.username, e.password = args[0], args[1]
		case "tls":
			args := c.RemainingArgs()
			if len(args) > 3 {
				return nil, usageErr(c, opt, "[CERT KEY CACERT]")
			}
			root := dnsserver.GetConfig(c).Root
			for i := range args {
				if !filepath.IsAbs(args[i]) && root != "" {
					args[i] = filepath.Join(root, args[i])
				}
			}
			cfg, err := pkgtls.NewTLSConfigFromArgs(args...)
			if err != nil {
				return nil, c.Errf("tls: %v", err)
			}
			e.tlsConfig = cfg
		case "min-lease-ttl", "max-lease-ttl", "negative_ttl":
			d, err := durationArg(c, opt)
			if err != nil {
				return nil, err
			}
			// 0 would mean the default inside (30 s, 24 h, 30 s): say so rather than take it.
			// A negative answer is cached for the lesser of the SOA's MINIMUM and its TTL,
			// which plugin.SOA makes at most 300 s (RFC 2308 section 5).
			most, why := time.Duration(math.MaxInt32)*time.Second, "RFC 2181 section 8"
			if opt == "negative_ttl" {
				most, why = 300*time.Second, "the SOA's TTL, which bounds negative caching, is at most 300s"
			}
			if d < time.Second || d > most {
				return nil, c.Errf("%s: %q is not between 1s and %ds (%s)", opt, c.Val(), most/time.Second, why)
			}
			if d%time.Second != 0 {
				return nil, c.Errf("%s: %q is not a whole number of seconds", opt, c.Val())
			}
			secs := uint32(d / time.Second)
			switch opt {
			case "min-lease-ttl":
				e.MinLeaseTTL = secs
			case "max-lease-ttl":
				e.MaxLeaseTTL = secs
			default:
				e.NegativeTTL = secs
			}
		case "no_apex_fallback", "wildcards":
			if len(c.RemainingArgs()) != 0 {
				return nil, usageErr(c, opt, "")
			}
			if opt == "wildcards" {
				e.Wildcards = true
			} else {
				e.NoApexFallback = true
			}
		case "max_stale":
			d, err := durationArg(c, opt)
			if err != nil {
				return nil, err
			}
			if d <= 0 {
				return nil, c.Errf("max_stale: %q is not a positive duration such as 30s or 5m", c.Val())
			}
			e.MaxStale = d
		case "startup_timeout", "verify", "notify_interval":
			d, err := durationArg(c, opt)
			if err != nil {
				return nil, err
			}
			switch opt {
			case "verify":
				e.Verify = d
			case "notify_interval":
				e.NotifyInterval = d
			default:
				e.StartupTimeout = d
			}
		case "max_answers", "ixfr_journal":
			args := c.RemainingArgs()
			if len(args) != 1 {
				return nil, usageErr(c, opt, "N")
			}
			least := 1
			if opt == "ixfr_journal" {
				least = 0
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < least {
				return nil, c.Errf("%s: %q is not a whole number of at least %d", opt, args[0], least)
			}
			if opt == "ixfr_journal" {
				e.IXFRJournal = n
			} else {
				e.MaxAnswers = n
			}
		case "answer_cache":
			args := c.RemainingArgs()
			if len(args) != 1 {
				return nil, usageErr(c, opt, "SIZE")
			}
			n, err := humanize.ParseBytes(args[0])
			if err != nil {
				return nil, c.Errf("answer_cache: %q is not a size such as 0, 64MiB or 1GiB", args[0])
			}
			e.AnswerCache = n
		case "stubzones", "upstream", "debug":
			// Accepted and ignored, as the etcd plugin does, so its Corefiles keep working.
			c.RemainingArgs()
		default:
			if near := suggest(opt); near != "" {
				return nil, c.Errf("unknown property '%s'; did you mean '%s'?", opt, near)
			}
			return nil, c.Errf("unknown property '%s'", opt)
		}
	}
	// The etcd client dials every endpoint as it dials the first.
	secure := overTLS(e.endpoints, e.tlsConfig)
	if e.tlsConfig != nil && !secure {
		log.Warningf("tls is set, but the etcd client dials %v without TLS, as it dials the first (http://): use https://", e.endpoints)
	}
	if slices.ContainsFunc(e.endpoints, func(ep string) bool { return overTLS([]string{ep}, e.tlsConfig) != secure }) {
		log.Warningf("The etcd client dials every endpoint of %v as it dials the first, %s TLS: give them all one scheme", e.endpoints, map[bool]string{true: "over", false: "without"}[secure])
	}
	e.watchZones()
	return e, nil
}

// usageErr reports a wrong argument count, naming the option and the line.
func usageErr(c *caddy.Controller, opt, args string) error {
	return c.Errf("wrong arguments for '%s': want '%s'", opt, strings.TrimSpace(opt+" "+args))
}

// durationArg reads the one argument of a duration option: a Go duration ("500ms", "5m",
// "1h30m") or bare seconds ("30"), the forms the built-in plugin's lease options take.
func durationArg(c *caddy.Controller, opt string) (time.Duration, error) {
	args := c.RemainingArgs()
	if len(args) != 1 {
		return 0, usageErr(c, opt, "DURATION")
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err == nil || errors.Is(err, strconv.ErrRange) {
		return time.Duration(min(n, math.MaxInt64/uint64(time.Second))) * time.Second, nil // ErrRange: n is the largest uint64
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d < 0 {
		return 0, c.Errf("%s: %q is neither seconds nor a duration such as 30, 30s, 5m or 2h30m", opt, args[0])
	}
	return d, nil
}

// options are the stanza's option names: the built-in etcd plugin's (fallthrough, path,
// endpoint, credentials, tls, min-lease-ttl, max-lease-ttl, and stubzones, upstream and
// debug, which it ignores too), under its spelling, and etcdsd's own.
var options = []string{
	"fallthrough", "path", "endpoint", "credentials", "tls", "min-lease-ttl", "max-lease-ttl",
	"stubzones", "upstream", "debug",
	"negative_ttl", "no_apex_fallback", "wildcards", "max_stale", "startup_timeout", "verify",
	"notify_interval", "max_answers", "ixfr_journal", "answer_cache",
}

// renamed are other plugins' names for an option of etcdsd's: the kubernetes plugin's
// ttl, which is its SOA's MINIMUM too.
var renamed = map[string]string{"ttl": "negative_ttl"}

// suggest returns the option an unknown one is likely a misspelling of, or "": the one
// nearest in edit distance, with '-' and '_' taken as the same, since the inherited
// names use one and etcdsd's the other.
func suggest(opt string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	if near, ok := renamed[norm(opt)]; ok {
		return near
	}
	for _, o := range options {
		if strings.HasPrefix(norm(opt), norm(o)+"_") { // verify_interval
			return o
		}
	}
	best, dist := "", max(2, len(opt)/3)+1
	for _, o := range options {
		if d := levenshtein.ComputeDistance(norm(opt), norm(o)); d < dist {
			best, dist = o, d
		}
	}
	return best
}

// checkZones refuses a stanza's zone that is no domain name (OriginsFromArgsOrServerBlock
// drops those without a word), or that no query of the server block can reach: neither
// inside one of the block's zones nor above one.
func checkZones(args, zones, serverBlockKeys []string) error {
	for _, a := range args {
		n := plugin.Host(a).NormalizeExact()
		if len(n) == 0 {
			return fmt.Errorf("zone %q is no domain name", a)
		}
		if _, _, err := net.ParseCIDR(a); err == nil {
			continue
		}
		// A reverse zone's labels may hold a '/' (RFC 2317's 128/27.2.0.192.in-addr.arpa).
		reverse := plugin.Zones{"in-addr.arpa.", "ip6.arpa."}.Matches(n[0]) != ""
		if strings.Contains(a, "/") && !reverse {
			return fmt.Errorf("zone %q is no CIDR such as 10.0.0.0/8, nor a reverse zone's name", a)
		}
		for _, z := range n {
			if _, ok := dns.IsDomainName(z); !ok || !hostLabels(z, reverse) {
				return fmt.Errorf("zone %q is no domain name", a)
			}
		}
	}
	block := plugin.OriginsFromArgsOrServerBlock(nil, serverBlockKeys)
	for _, z := range zones {
		if len(block) == 0 {
			break // a test's controller, without a server block
		}
		if !slices.ContainsFunc(block, func(b string) bool { return dns.IsSubDomain(b, z) || dns.IsSubDomain(z, b) }) {
			return fmt.Errorf("zone %s is outside this server block's zones %v: no query for it would reach etcdsd", z, block)
		}
	}
	return nil
}

// hostLabels reports whether every label of the zone name is letters, digits, '-' and '_'
// (service labels such as _tcp), and '/' in a reverse zone: a zone with a space, '*' or
// brackets is a typo.
func hostLabels(zone string, reverse bool) bool {
	for _, l := range dns.SplitDomainName(zone) {
		if strings.IndexFunc(l, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || reverse && r == '/')
		}) >= 0 {
			return false
		}
	}
	return true
}
