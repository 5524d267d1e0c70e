package etcdsd

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	pkgtls "github.com/coredns/coredns/plugin/pkg/tls"
	"github.com/coredns/coredns/plugin/pkg/upstream"
	"github.com/coredns/coredns/plugin/transfer"
	"github.com/dustin/go-humanize"
	"github.com/etcdsd/etcdsd/internal/index"
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
	e.Zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)

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
		case "min-lease-ttl", "max-lease-ttl":
			args := c.RemainingArgs()
			if len(args) != 1 {
				return nil, usageErr(c, opt, "DURATION")
			}
			secs, err := parseSeconds(args[0])
			if err != nil {
				return nil, c.Errf("%s: %v", opt, err)
			}
			// 0 would mean the default inside (30 s, 24 h): say so rather than take it.
			if secs == 0 || secs > math.MaxInt32 {
				return nil, c.Errf("%s: %q is not between 1 s and %d s (RFC 2181 section 8)", opt, args[0], math.MaxInt32)
			}
			if opt == "min-lease-ttl" {
				e.MinLeaseTTL = secs
			} else {
				e.MaxLeaseTTL = secs
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
			args := c.RemainingArgs()
			if len(args) != 1 {
				return nil, usageErr(c, opt, "DURATION")
			}
			d, err := time.ParseDuration(args[0])
			if err != nil || d <= 0 {
				return nil, c.Errf("max_stale: %q is not a positive duration such as 30s or 5m", args[0])
			}
			e.MaxStale = d
		case "startup_timeout", "verify", "notify_interval":
			args := c.RemainingArgs()
			if len(args) != 1 {
				return nil, usageErr(c, opt, "DURATION")
			}
			d, err := time.ParseDuration(args[0])
			if err != nil || d < 0 {
				return nil, c.Errf("%s: %q is not a duration such as 0, 5s or 10m", opt, args[0])
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
			return nil, c.Errf("unknown property '%s'", opt)
		}
	}
	e.watchZones()
	return e, nil
}

// usageErr reports a wrong argument count, naming the option and the line.
func usageErr(c *caddy.Controller, opt, args string) error {
	return c.Errf("wrong arguments for '%s': want '%s'", opt, strings.TrimSpace(opt+" "+args))
}

// parseSeconds reads a TTL given as plain seconds ("30") or a Go duration ("5m", "1h30m").
func parseSeconds(s string) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		if n > math.MaxUint32 {
			return 0, fmt.Errorf("%q is more than %d seconds", s, uint32(math.MaxUint32))
		}
		return uint32(n), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither seconds nor a duration such as 30s, 5m or 2h30m", s)
	}
	if d < 0 {
		return 0, errors.New("a TTL cannot be negative")
	}
	secs := d / time.Second
	if secs > math.MaxUint32 {
		return 0, fmt.Errorf("%q is more than %d seconds", s, uint32(math.MaxUint32))
	}
	return uint32(secs), nil
}
