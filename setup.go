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
	"unicode/utf8"

	"github.com/agnivade/levenshtein"
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	corefileparse "github.com/coredns/coredns/plugin/pkg/parse"
	pkgtls "github.com/coredns/coredns/plugin/pkg/tls"
	"github.com/coredns/coredns/plugin/transfer"
	"github.com/dustin/go-humanize"
	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

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
	e := defaults()
	args := c.RemainingArgs()
	e.zones = plugin.OriginsFromArgsOrServerBlock(args, c.ServerBlockKeys)
	warnings, err := checkZones(args, e.zones, c.ServerBlockKeys)
	if err != nil {
		return nil, c.Errf("%v", err)
	}
	for _, w := range warnings {
		log.Warningf("%s:%d: %s", c.File(), c.Line(), w)
	}

	for c.NextBlock() {
		opt := c.Val()
		switch opt {
		case "fallthrough":
			e.Fall.SetZonesFromArgs(optionArgs(c))
		case "path":
			args := optionArgs(c)
			if len(args) != 1 {
				return nil, usageErr(c, opt, "PATH")
			}
			e.PathPrefix = args[0]
		case "endpoint":
			args := optionArgs(c)
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
			args := optionArgs(c)
			if len(args) != 2 {
				return nil, usageErr(c, opt, "USERNAME PASSWORD")
			}
			e.username, e.password = args[0], args[1]
		case "tls":
			args := optionArgs(c)
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
		case "min-lease-ttl", "max-lease-ttl":
			secs, warning, err := leaseTTLArg(c, opt)
			if err != nil {
				return nil, err
			}
			if warning != "" {
				log.Warningf("%s:%d: %s", c.File(), c.Line(), warning)
			}
			if opt == "min-lease-ttl" {
				e.MinLeaseTTL = secs
			} else {
				e.MaxLeaseTTL = secs
			}
		case "negative_ttl":
			d, err := durationArg(c, opt)
			if err != nil {
				return nil, err
			}
			// A negative answer is cached for the lesser of the SOA's MINIMUM and its TTL,
			// which plugin.SOA makes at most 300 s (RFC 2308 section 5).
			if d < time.Second || d > 300*time.Second || d%time.Second != 0 {
				return nil, c.Errf("%s: %q is not a whole number of seconds between 1s and 300s (the SOA's TTL, which bounds negative caching, is at most 300s)", opt, c.Val())
			}
			e.NegativeTTL = uint32(d / time.Second)
		case "no_apex_fallback", "wildcards":
			if len(optionArgs(c)) != 0 {
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
			if d == 0 {
				e.MaxStale = 0 // no limit, as without the option
				break
			}
			if d < minMaxStale {
				return nil, c.Errf("max_stale: %q is less than %v: a quiet watch of a healthy etcd is heard from about every %v, so answers would fail while nothing is wrong", c.Val(), minMaxStale, silentAfter)
			}
			e.MaxStale = d
		case "startup_timeout", "verify", "notify_interval":
			d, err := durationArg(c, opt)
			if err != nil {
				return nil, err
			}
			switch opt {
			case "verify":
				if d != 0 && d < minVerify {
					return nil, c.Errf("verify: %q is less than %v: each check reads every key of the zone from etcd; 0 turns checks off", c.Val(), minVerify)
				}
				e.watch.verifyEvery = d
			case "notify_interval":
				e.NotifyInterval = d
			default:
				e.StartupTimeout = d
			}
		case "max_answers", "ixfr_journal":
			args := optionArgs(c)
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
				e.watch.journalSize = n
			} else {
				e.MaxAnswers = n
			}
		case "answer_cache":
			args := optionArgs(c)
			if len(args) != 1 {
				return nil, usageErr(c, opt, "SIZE")
			}
			n, err := humanize.ParseBytes(args[0])
			if err != nil {
				return nil, c.Errf("answer_cache: %q is not a size such as 0, 64MiB or 1GiB", args[0])
			}
			e.watch.answerBudget = n
		case "stubzones", "upstream", "debug":
			// Accepted and ignored, as the etcd plugin does, so its Corefiles keep working.
			optionArgs(c)
		default:
			if near := suggest(opt); near != "" {
				return nil, c.Errf("unknown property '%s'; did you mean '%s'?", opt, near)
			}
			return nil, c.Errf("unknown property '%s'", opt)
		}
	}
	if e.MinLeaseTTL > e.MaxLeaseTTL {
		log.Warningf("min-lease-ttl %ds is more than max-lease-ttl %ds: every leased record gets a TTL of %ds, as with the etcd plugin", e.MinLeaseTTL, e.MaxLeaseTTL, e.MinLeaseTTL)
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

// optionArgs returns the arguments of the option at c. A '}' that closes the stanza on the
// option's own line ("endpoint http://etcd:2379 }") is read by Caddy as one more argument;
// it is dropped, as the built-in plugin's lists of endpoints ignore it, so that its
// Corefiles start unchanged.
func optionArgs(c *caddy.Controller) []string {
	args := c.RemainingArgs()
	if n := len(args); n > 0 && args[n-1] == "}" {
		args = args[:n-1]
	}
	return args
}

// usageErr reports a wrong argument count, naming the option and the line.
func usageErr(c *caddy.Controller, opt, args string) error {
	return c.Errf("wrong arguments for '%s': want '%s'", opt, strings.TrimSpace(opt+" "+args))
}

// durationArg reads the one argument of a duration option: a Go duration ("500ms", "5m",
// "1h30m") or bare seconds ("30"), the forms the built-in plugin's lease options take.
func durationArg(c *caddy.Controller, opt string) (time.Duration, error) {
	args := optionArgs(c)
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

// leaseTTLArg reads min-lease-ttl or max-lease-ttl as the built-in plugin does, so that its
// Corefiles start unchanged: up to 2^32-1 seconds, a fraction of a second dropped, 0 the
// default. What it changes it returns as a warning; past 2^31-1 seconds it takes 2^31-1,
// the most a TTL may be (RFC 2181 section 8).
func leaseTTLArg(c *caddy.Controller, opt string) (secs uint32, warning string, err error) {
	d, err := durationArg(c, opt)
	if err != nil {
		return 0, "", err
	}
	if d > math.MaxUint32*time.Second {
		return 0, "", c.Errf("%s: %q is more than 4294967295 seconds", opt, c.Val())
	}
	def := map[string]uint32{"min-lease-ttl": index.DefaultMinLeaseTTL, "max-lease-ttl": index.DefaultMaxLeaseTTL}[opt]
	switch s := d / time.Second; {
	case s == 0:
		return def, fmt.Sprintf("%s %s is 0 seconds, which means the default, %ds", opt, c.Val(), def), nil
	case s > math.MaxInt32:
		return math.MaxInt32, fmt.Sprintf("%s %s is more than a TTL may be: taking 2147483647s (RFC 2181 section 8)", opt, c.Val()), nil
	case d%time.Second != 0:
		return uint32(s), fmt.Sprintf("%s %s: TTLs are whole seconds, taking %ds", opt, c.Val(), s), nil
	default:
		return uint32(s), "", nil
	}
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
		rest, ok := strings.CutPrefix(norm(opt), norm(o)+"_")
		if ok && slices.Contains([]string{"interval", "period", "every"}, rest) { // verify_interval
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
// drops those without a word), a CIDR that does not parse, or a zone that no query of the
// server block can reach: neither inside one of the block's zones nor above one. A zone
// the built-in plugin takes but queries are unlikely to carry (a '*' label, non-ASCII
// letters) it returns as warnings, so that the built-in's Corefiles start unchanged.
func checkZones(args, zones, serverBlockKeys []string) (warnings []string, err error) {
	for _, a := range args {
		n := plugin.Host(a).NormalizeExact() // drops dns:// and :53 as the server block's keys do
		if len(n) == 0 {
			return nil, fmt.Errorf("zone %q is no domain name%s", a, cidrHint(a))
		}
		for _, z := range n {
			if host, port, ok := strings.Cut(z, ":"); ok {
				return nil, fmt.Errorf("zone %q: %q is no port (zone %s)", a, strings.TrimSuffix(port, "."), host)
			}
			// A reverse zone's labels may hold a '/' (RFC 2317's 128/27.2.0.192.in-addr.arpa);
			// a CIDR is made into reverse zones, so a '/' anywhere else is a CIDR that failed.
			reverse := isReverse(z)
			if strings.Contains(z, "/") && !reverse {
				return nil, fmt.Errorf("zone %q is no CIDR such as 10.0.0.0/8, nor a reverse zone's name", a)
			}
			if w := oddLabels(z); w != "" {
				warnings = append(warnings, fmt.Sprintf("zone %s %s", z, w))
			}
		}
	}
	if len(args) == 0 { // the server block's zones, which CoreDNS takes as they are
		for _, z := range zones {
			if w := oddLabels(z); w != "" {
				warnings = append(warnings, fmt.Sprintf("zone %s %s", z, w))
			}
		}
	}
	block := plugin.OriginsFromArgsOrServerBlock(nil, serverBlockKeys)
	for _, z := range zones {
		if len(block) == 0 {
			break // a test's controller, without a server block
		}
		if !slices.ContainsFunc(block, func(b string) bool { return dns.IsSubDomain(b, z) || dns.IsSubDomain(z, b) }) {
			return nil, fmt.Errorf("zone %s is outside this server block's zones %v: no query for it would reach etcdsd", z, block)
		}
	}
	return warnings, nil
}

// cidrHint says, for a CIDR that CoreDNS will not take (one that starts with ':' or '0',
// such as ::/0 or ::ffff:0:0/96), the reverse zone to write instead; "" for anything else.
func cidrHint(a string) string {
	_, host := corefileparse.Transport(a)
	_, network, err := net.ParseCIDR(host)
	if err != nil {
		return ""
	}
	bits, size := network.Mask.Size()
	per := map[int]int{32: 8, 128: 4}[size] // bits per label of in-addr.arpa, ip6.arpa
	if bits%per != 0 {
		return fmt.Sprintf(": CoreDNS takes no CIDR that starts with ':' or '0'; write the reverse zones of %s instead", network)
	}
	// The network's labels, least significant first (RFC 3596 section 2.5 for ip6.arpa).
	var labels []string
	if size == 32 {
		for i := bits/8 - 1; i >= 0; i-- {
			labels = append(labels, strconv.Itoa(int(network.IP.To4()[i])))
		}
		labels = append(labels, "in-addr", "arpa")
	} else {
		for i := bits/4 - 1; i >= 0; i-- {
			labels = append(labels, strconv.FormatUint(uint64(network.IP[i/2]>>(4*(1-i%2))&0xf), 16))
		}
		labels = append(labels, "ip6", "arpa")
	}
	return fmt.Sprintf(": CoreDNS takes no CIDR that starts with ':' or '0'; write its reverse zone, %s.", strings.Join(labels, "."))
}

// isReverse reports whether zone lies under in-addr.arpa or ip6.arpa.
func isReverse(zone string) bool {
	return plugin.Zones{"in-addr.arpa.", "ip6.arpa."}.Matches(zone) != ""
}

// oddLabels says why queries are unlikely to reach a zone whose labels hold more than
// letters, digits, '-' and '_' (service labels such as _tcp), and '/' in a reverse zone,
// or returns "". Resolvers send internationalized names as A-labels (RFC 5891 section
// 4), so a zone written in U-labels is named in the form they ask for.
func oddLabels(zone string) string {
	reverse := isReverse(zone)
	odd := strings.IndexFunc(zone, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || reverse && r == '/')
	})
	if odd < 0 {
		return ""
	}
	if ascii, err := idna.Lookup.ToASCII(zone); err == nil && ascii != zone {
		return fmt.Sprintf("has letters outside ASCII, which queries never carry: they ask for %s; write that", ascii)
	}
	r, _ := utf8.DecodeRuneInString(zone[odd:])
	return fmt.Sprintf("has %q in a label: only a query with that very label reaches it (a '*' in a zone is no wildcard)", r)
}
