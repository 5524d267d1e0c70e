package etcdsd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/coredns/coredns/plugin/etcd/msg"
)

const (
	defaultPriority    = 10    // SRV/MX priority when a value sets none
	defaultTTL         = 300   // record TTL when neither the value nor a lease sets one
	defaultMinLeaseTTL = 30    // lower bound for a lease-derived TTL
	defaultMaxLeaseTTL = 86400 // upper bound for a lease-derived TTL

	// maxText bounds a value's text: a TXT record larger than this cannot fit a DNS
	// message (65535 bytes) with its owner name, chunk lengths and question.
	maxText = 64000
)

// Reasons a value is skipped, as the skipped_values_total metric labels them.
const (
	reasonInvalidJSON = "invalid_json" // not JSON at all
	reasonNotObject   = "not_object"   // JSON, but not an object
	reasonWrongType   = "wrong_type"   // a field of the wrong JSON type
	reasonInvalidHost = "invalid_host" // host neither an IP address nor a host name
	reasonOutOfRange  = "out_of_range" // port, priority or weight outside 0..65535
	reasonTooLarge    = "too_large"    // text that no DNS message can carry
	reasonInvalidKey  = "invalid_key"  // key that maps to no valid DNS name
)

// invalidValue is why a value was skipped.
type invalidValue struct {
	reason string
	err    error
}

func (e *invalidValue) Error() string { return e.reason + ": " + e.err.Error() }

func invalid(reason, format string, args ...any) error {
	return &invalidValue{reason: reason, err: fmt.Errorf(format, args...)}
}

// decodeService reads and checks one SkyDNS JSON value. It fills in the defaults the etcd
// plugin fills in per query, so that lookups only have to copy the result. Values the etcd
// plugin would turn into wrong records (a port that wraps, a host that is no name) or into
// a failed answer are refused with an *invalidValue.
func decodeService(key string, value []byte) (msg.Service, error) {
	if !validKey(key) {
		return msg.Service{}, invalid(reasonInvalidKey, "key does not map to a valid DNS name")
	}
	var s msg.Service
	if err := json.Unmarshal(value, &s); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return msg.Service{}, invalid(reasonNotObject, "value is JSON but not an object")
		case errors.As(err, &te):
			return msg.Service{}, invalid(reasonWrongType, "field %q: %s where %s belongs", te.Field, te.Value, te.Type)
		}
		return msg.Service{}, invalid(reasonInvalidJSON, "%v", err)
	}
	if v := bytes.TrimSpace(value); v[0] != '{' { // null decodes without error
		return msg.Service{}, invalid(reasonNotObject, "value is JSON but not an object")
	}
	if s.Host != "" && !validHost(s.Host) {
		return msg.Service{}, invalid(reasonInvalidHost, "host %q is neither an IP address nor a host name", s.Host)
	}
	// Port -1 means "no port" to the etcd plugin: no SRV record, addresses only.
	if s.Port < -1 || s.Port > 65535 {
		return msg.Service{}, invalid(reasonOutOfRange, "port %d outside 0..65535", s.Port)
	}
	if s.Priority < 0 || s.Priority > 65535 {
		return msg.Service{}, invalid(reasonOutOfRange, "priority %d outside 0..65535", s.Priority)
	}
	if s.Weight < 0 || s.Weight > 65535 {
		return msg.Service{}, invalid(reasonOutOfRange, "weight %d outside 0..65535", s.Weight)
	}
	if len(s.Text) > maxText {
		return msg.Service{}, invalid(reasonTooLarge, "text of %d bytes, more than the %d a DNS message can carry", len(s.Text), maxText)
	}
	s.Key = key
	if s.Priority == 0 {
		s.Priority = defaultPriority
	}
	return s, nil
}

// validKey reports whether key's name (its labels after the first path element, which
// the SRV target drops) is a valid DNS name: no empty label, none over 63 bytes, at most
// 253 bytes in all.
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
			if rest == "" {
				return false // a trailing '/': an empty label
			}
		} else {
			rest = ""
		}
		if len(l) == 0 || len(l) > 63 {
			return false
		}
	}
	return true
}

// validHost reports whether h is an IP address or a host name: labels of 1 to 63 letters,
// digits, '-' or '_', at most 253 characters, and a last label that is not all digits (so
// that "999.1.1.1" is not taken for a name).
func validHost(h string) bool {
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

// rootKey is the etcd key that the zone root "." maps to under prefix, for example "/skydns".
// Every key the plugin can ever answer from is rootKey itself or lies below rootKey + "/".
func rootKey(prefix string) string {
	return path.Join("/" + prefix + "/")
}

// keyRange returns the etcd range [start, end) that holds rootKey and all keys below it,
// and nothing else: "/skydns" up to "/skydns0", as '0' follows '/' in byte order. This
// keeps a sibling such as "/skydnsfoo" out of the index.
func keyRange(prefix string) (start, end string) {
	start = rootKey(prefix)
	if start == "/" {
		return "/", "0"
	}
	return start, start + "0"
}
