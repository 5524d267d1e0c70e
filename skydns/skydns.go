// Package skydns is the data contract of etcdsd without CoreDNS: the SkyDNS JSON value of
// a record, the checks etcdsd applies to it, and the etcd key of a DNS name. The plugin,
// etcdsdctl and services that register themselves share it, so a value that one writes the
// others read the same way.
package skydns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// Service is one SkyDNS value. Its fields are those of CoreDNS's etcd plugin (msg.Service),
// in the same order, so that one converts to the other.
type Service struct {
	Host        string `json:"host,omitempty"`
	Port        int    `json:"port,omitempty"`
	Priority    int    `json:"priority,omitempty"`
	Weight      int    `json:"weight,omitempty"`
	Text        string `json:"text,omitempty"`
	Mail        bool   `json:"mail,omitempty"` // an MX record; Priority is its preference
	TTL         uint32 `json:"ttl,omitempty"`
	TargetStrip int    `json:"targetstrip,omitempty"` // labels to drop from a synthesized SRV target
	Group       string `json:"group,omitempty"`

	Key string `json:"-"` // the etcd key the value was read from
}

// MaxText bounds a value's text: a TXT record larger than this cannot fit a DNS message
// (65535 bytes) with its owner name, chunk lengths and question.
const MaxText = 64000

// Reasons a value is refused, as etcdsd's skipped_values_total metric labels them.
const (
	ReasonInvalidJSON = "invalid_json" // not JSON at all
	ReasonNotObject   = "not_object"   // JSON, but not an object
	ReasonWrongType   = "wrong_type"   // a field of the wrong JSON type
	ReasonInvalidHost = "invalid_host" // host neither an IP address nor a host name
	ReasonOutOfRange  = "out_of_range" // port, priority or weight outside 0..65535
	ReasonTooLarge    = "too_large"    // text that no DNS message can carry
	ReasonInvalidKey  = "invalid_key"  // key that maps to no valid DNS name
)

// Reasons lists every Reason constant, in the order above.
var Reasons = []string{ReasonInvalidJSON, ReasonNotObject, ReasonWrongType, ReasonInvalidHost, ReasonOutOfRange, ReasonTooLarge, ReasonInvalidKey}

// InvalidError is why a value is refused.
type InvalidError struct {
	Reason string // one of the Reason constants
	Err    error
}

func (e *InvalidError) Error() string { return e.Reason + ": " + e.Err.Error() }

func (e *InvalidError) Unwrap() error { return e.Err }

func invalid(reason, format string, args ...any) error {
	return &InvalidError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Reason returns the reason of an *InvalidError in err's chain, or ReasonInvalidJSON.
func Reason(err error) string {
	var iv *InvalidError
	if errors.As(err, &iv) {
		return iv.Reason
	}
	return ReasonInvalidJSON
}

// Decode reads and checks the value stored at key (CheckKey, DecodeValue). Values that the
// etcd plugin would turn into wrong records (a port that wraps, a host that is no name) or
// into a failed answer are refused with an *InvalidError. Unknown fields are ignored, as
// the etcd plugin does.
func Decode(key string, value []byte) (Service, error) {
	if err := CheckKey(key); err != nil {
		return Service{}, err
	}
	s, err := DecodeValue(value)
	s.Key = key
	return s, err
}

// CheckKey returns an *InvalidError of ReasonInvalidKey when key maps to no valid DNS name
// (validKey): no record can be named after it, though the names above it can hold its
// records, as the etcd plugin reads their subtrees.
func CheckKey(key string) error {
	if !validKey(key) {
		return invalid(ReasonInvalidKey, "key does not map to a valid DNS name")
	}
	return nil
}

// DecodeValue reads and checks a value, whatever its key, as Decode does; the Service
// returned has no Key.
func DecodeValue(value []byte) (Service, error) {
	var s Service
	if err := json.Unmarshal(value, &s); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return Service{}, invalid(ReasonNotObject, "value is JSON but not an object")
		case errors.As(err, &te):
			return Service{}, invalid(ReasonWrongType, "field %q: %s where %s belongs", te.Field, te.Value, te.Type)
		}
		return Service{}, invalid(ReasonInvalidJSON, "%v", err)
	}
	if v := bytes.TrimSpace(value); v[0] != '{' { // null decodes without error
		return Service{}, invalid(ReasonNotObject, "value is JSON but not an object")
	}
	if err := s.Check(); err != nil {
		return Service{}, err
	}
	return s, nil
}

// Check reports the first field of s that etcdsd would refuse, as an *InvalidError.
func (s *Service) Check() error {
	if s.Host != "" && !ValidHost(s.Host) {
		return invalid(ReasonInvalidHost, "host %q is neither an IP address nor a host name", s.Host)
	}
	// Port -1 means "no port" to the etcd plugin: no SRV record, addresses only.
	if s.Port < -1 || s.Port > 65535 {
		return invalid(ReasonOutOfRange, "port %d outside 0..65535", s.Port)
	}
	if s.Priority < 0 || s.Priority > 65535 {
		return invalid(ReasonOutOfRange, "priority %d outside 0..65535", s.Priority)
	}
	if s.Weight < 0 || s.Weight > 65535 {
		return invalid(ReasonOutOfRange, "weight %d outside 0..65535", s.Weight)
	}
	if len(s.Text) > MaxText {
		return invalid(ReasonTooLarge, "text of %d bytes, more than the %d a DNS message can carry", len(s.Text), MaxText)
	}
	return nil
}

// validKey reports whether key's name (its labels after the first path element, which
// the SRV target drops) is a valid DNS name: no empty label, none over 63 bytes, at most
// 253 bytes in all, a trailing '/' aside. A '.' inside a key's label separates labels of the name, as the etcd
// plugin joins the key's labels with dots: "a.b" is two labels, "0.." has empty ones.
func validKey(key string) bool {
	if !strings.HasPrefix(key, "/") || strings.Trim(key, "/") == "" {
		return false // no name at all, not even the root: the SRV target would have none
	}
	rest := strings.TrimPrefix(key, "/")
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return true // the path's own key: the root name
	}
	rest = rest[i+1:]
	if len(rest) > 253 {
		return false
	}
	for rest != "" {
		l := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			l, rest = rest[:j], rest[j+1:]
			// A trailing '/' is no label: the etcd plugin's name of the key drops it
			// (msg.Domain), so ".../a/b/" is b.a (coredns#2982).
		} else {
			rest = ""
		}
		for _, part := range strings.Split(l, ".") {
			if len(part) == 0 || len(part) > 63 {
				return false
			}
		}
	}
	return true
}

// ValidHost reports whether h is an IP address or a host name: labels of 1 to 63 letters,
// digits, '-' or '_', at most 253 characters, and a last label that is not all digits (so
// that "999.1.1.1" is not taken for a name).
func ValidHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
		for _, c := range []byte(l) {
			if !isLetterDigit(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return strings.TrimLeft(labels[len(labels)-1], "0123456789") != ""
}

func isLetterDigit(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Key returns the etcd key of DNS name under prefix: its labels reversed, lower-cased, as
// etcdsd and the etcd plugin look them up ("web.example.local." under "/skydns" is
// "/skydns/local/example/web"). It refuses names that no query can ask for.
func Key(prefix, name string) (string, error) {
	name = dns.Fqdn(strings.ToLower(name))
	if _, ok := dns.IsDomainName(name); !ok || name == "." {
		return "", fmt.Errorf("%q is not a DNS name below the root", name)
	}
	labels := dns.SplitDomainName(name)
	for _, l := range labels {
		if strings.ContainsAny(l, `/\`) || l == "*" || l == "any" {
			return "", fmt.Errorf("%q: label %q cannot be registered", name, l)
		}
	}
	parts := make([]string, 0, len(labels)+1)
	parts = append(parts, "/"+prefix+"/")
	for i := len(labels) - 1; i >= 0; i-- {
		parts = append(parts, labels[i])
	}
	key := path.Join(parts...)
	if !validKey(key) {
		return "", fmt.Errorf("%q: no valid key under %q", name, prefix)
	}
	return key, nil
}

// Quote returns s as it may be printed to a log or a terminal: as it is when it is valid
// UTF-8 of printable characters without spaces, quotes or backslashes, else as a Go
// string literal (strconv.Quote), whose escapes (\n, \x1b) can neither start a forged log
// line nor drive a terminal. etcd keys and values are anyone's bytes.
func Quote(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"' || r == '\\'
	}) {
		return strconv.Quote(s)
	}
	return s
}
