package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Unlimited as Config.MaxSessionsPerUser lifts the per-user limit.
const Unlimited = -1

// LimitPolicy says what Create does for a user already at
// Config.MaxSessionsPerUser live sessions.
type LimitPolicy int

const (
	// EvictOldest ends the user's least recently active session
	// (ReasonEvicted) to make room. It is the default.
	EvictOldest LimitPolicy = iota
	// RejectNew creates nothing and returns ErrLimitReached.
	RejectNew
)

// Config configures a Manager. Its zero value means the documented
// defaults; NewManager validates it and returns an error wrapping
// ErrInvalidConfig that names the offending field. NewManager copies Keys,
// so the caller may reuse the slice afterwards.
//
// Every duration is 0 (the default, or off) or between MinDuration (1ms)
// and MaxDuration (100 years): IdleTimeout: 1800, seconds written without
// their unit, is 1.8µs and an error that suggests 1800 * time.Second. A key
// must be 32 or 64 bytes, not all zero.
type Config struct {
	IdleTimeout        time.Duration // end a session idle this long; 0 → 30m   (JSON "inactive_timeout")
	AbsoluteTimeout    time.Duration // end a session this long after creation, active or not; 0 → off
	CleanupInterval    time.Duration // how often the manager sweeps; 0 → 5m     (JSON "cleanup_interval")
	MaxSessionsPerUser int           // live sessions per user; 0 → 5; Unlimited (-1) → no limit (JSON "max_sessions_per_user")
	LimitPolicy        LimitPolicy   // EvictOldest (default) or RejectNew     (JSON "limit_policy": "evict_oldest" | "reject_new")
	DisableAutoCleanup bool          // true → no background sweeper           (JSON "enable_auto_cleanup": false)
	Cookie             CookieConfig
	Keys               [][]byte // securecookie hash keys (32 or 64 bytes); Keys[0] signs, all verify (rotation)
}

// CookieConfig configures the session cookie. A name starting with the
// "__Host-" prefix requires Secure, no Domain and Path "/"; "__Secure-"
// requires Secure; SameSite None requires Secure. Browsers drop cookies that
// break these rules, so NewManager rejects them.
type CookieConfig struct {
	Name     string        // default "__Host-session"; "session" when Insecure, Domain or Path ≠ "/" is set
	Path     string        // default "/"
	Domain   string        // default "": a host-only cookie
	SameSite http.SameSite // default http.SameSiteLaxMode
	Insecure bool          // true → no Secure attribute (plain-http development only); HttpOnly is always set
	MaxAge   time.Duration // 0 → browser-session cookie
}

// Defaults.
const (
	DefaultIdleTimeout        = 30 * time.Minute
	DefaultCleanupInterval    = 5 * time.Minute
	DefaultMaxSessionsPerUser = 5
)

// Bounds of every duration in a Config (IdleTimeout, AbsoluteTimeout,
// CleanupInterval, Cookie.MaxAge) other than 0, which means the default or
// off. A shorter one is almost always a number of seconds written without
// its unit (time.Duration counts nanoseconds: IdleTimeout: 1800 is 1.8µs);
// a longer one would push a deadline past what time.Time's UnixNano (year
// 2262) and a cookie's Max-Age can hold. MinDuration itself is legal.
const (
	MinDuration = time.Millisecond
	MaxDuration = 100 * 365 * 24 * time.Hour // 100 years (of 365 days)
)

// normalize returns c with defaults filled in and Keys deep-copied, or an
// error wrapping ErrInvalidConfig that names the field that is wrong. It
// never changes the caller's Keys and does not default them (the Manager
// does). normalize is idempotent.
func (c Config) normalize() (Config, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.Keys != nil {
		keys := make([][]byte, len(c.Keys))
		for i, k := range c.Keys {
			keys[i] = bytes.Clone(k)
		}
		c.Keys = keys
	}
	return c, nil
}

// withDefaults returns c with its zero settings replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = DefaultCleanupInterval
	}
	if c.MaxSessionsPerUser == 0 {
		c.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if c.Cookie.Name == "" {
		c.Cookie.Name = "__Host-session"
		if c.Cookie.Insecure || c.Cookie.Domain != "" || (c.Cookie.Path != "" && c.Cookie.Path != "/") {
			c.Cookie.Name = "session"
		}
	}
	if c.Cookie.Path == "" {
		c.Cookie.Path = "/"
	}
	if c.Cookie.SameSite == 0 {
		c.Cookie.SameSite = http.SameSiteLaxMode
	}
	return c
}

// validate checks a Config whose defaults are filled in. Its errors name
// the Go field and never show a key.
func (c Config) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"IdleTimeout", c.IdleTimeout},
		{"AbsoluteTimeout", c.AbsoluteTimeout},
		{"CleanupInterval", c.CleanupInterval},
		{"Cookie.MaxAge", c.Cookie.MaxAge},
	} {
		switch {
		case d.v < 0:
			return fmt.Errorf("%s must not be negative (got %v)", d.name, d.v)
		case d.v > 0 && d.v < MinDuration:
			// Almost always a number of seconds (or milliseconds) written
			// without its unit: time.Duration counts nanoseconds.
			return fmt.Errorf("%s %v is under the 1ms minimum: did you mean %d * time.Second?", d.name, d.v, int64(d.v))
		case d.v > MaxDuration:
			return fmt.Errorf("%s %v is over the maximum, sessions.MaxDuration (100 years): a deadline that far would overflow", d.name, d.v)
		}
	}
	if c.MaxSessionsPerUser < Unlimited {
		return fmt.Errorf("MaxSessionsPerUser must be positive, 0 (default %d) or Unlimited (-1) (got %d)",
			DefaultMaxSessionsPerUser, c.MaxSessionsPerUser)
	}
	if c.LimitPolicy != EvictOldest && c.LimitPolicy != RejectNew {
		return fmt.Errorf("LimitPolicy must be EvictOldest or RejectNew (got %d)", c.LimitPolicy)
	}
	for i, k := range c.Keys {
		if len(k) != 32 && len(k) != 64 {
			return fmt.Errorf("Keys[%d] is %d bytes; want 32 or 64", i, len(k))
		}
		if !slices.ContainsFunc(k, func(b byte) bool { return b != 0 }) {
			return fmt.Errorf("Keys[%d] is all zero bytes: make keys with crypto/rand and keep them secret", i)
		}
	}
	return c.Cookie.validate()
}

func (cc CookieConfig) validate() error {
	if !isToken(cc.Name) {
		return fmt.Errorf("Cookie.Name %q is not a valid cookie name (an RFC 6265 token: no spaces, controls or ()<>@,;:\\\"/[]?={})", cc.Name)
	}
	if !strings.HasPrefix(cc.Path, "/") || strings.ContainsFunc(cc.Path, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ';' }) {
		return fmt.Errorf("Cookie.Path must start with \"/\" and contain no ';' or control characters (got %q)", cc.Path)
	}
	if strings.ContainsFunc(cc.Domain, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.')
	}) {
		return fmt.Errorf("Cookie.Domain must be a host name such as \"example.com\" (got %q)", cc.Domain)
	}
	switch cc.SameSite {
	case http.SameSiteDefaultMode, http.SameSiteLaxMode, http.SameSiteStrictMode, http.SameSiteNoneMode:
	default:
		return fmt.Errorf("Cookie.SameSite must be http.SameSiteDefaultMode, LaxMode, StrictMode or NoneMode (got %d)", cc.SameSite)
	}
	// Browsers match the prefixes case-insensitively (RFC 6265bis).
	name := strings.ToLower(cc.Name)
	switch {
	case strings.HasPrefix(name, "__host-") && cc.Insecure:
		return fmt.Errorf("Cookie.Name %q requires Secure, but Cookie.Insecure is set", cc.Name)
	case strings.HasPrefix(name, "__host-") && cc.Domain != "":
		return fmt.Errorf("Cookie.Name %q forbids a Domain (got Cookie.Domain %q)", cc.Name, cc.Domain)
	case strings.HasPrefix(name, "__host-") && cc.Path != "/":
		return fmt.Errorf("Cookie.Name %q requires Path \"/\" (got Cookie.Path %q)", cc.Name, cc.Path)
	case strings.HasPrefix(name, "__secure-") && cc.Insecure:
		return fmt.Errorf("Cookie.Name %q requires Secure, but Cookie.Insecure is set", cc.Name)
	case cc.SameSite == http.SameSiteNoneMode && cc.Insecure:
		return errors.New("Cookie.SameSite None requires Secure, but Cookie.Insecure is set (browsers reject such a cookie)")
	}
	return nil
}

// isToken reports whether s is an RFC 2616 token, which RFC 6265 requires
// of a cookie name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// LoadConfig reads the JSON config file at path. It accepts the file the
// original Python system wrote, with times in integer seconds:
//
//	{ "inactive_timeout": 1800, "cleanup_interval": 300,
//	  "max_sessions_per_user": 5, "enable_auto_cleanup": true }
//
// The time keys ("inactive_timeout", "absolute_timeout", "cleanup_interval"
// and "cookie.max_age") take a number of seconds, fractions allowed, or a Go
// duration string such as "30m". The other keys are "max_sessions_per_user"
// (an integer; -1 is Unlimited), "enable_auto_cleanup" (a boolean),
// "limit_policy" ("evict_oldest" or "reject_new") and "cookie", an object
// with "name", "path", "domain", "same_site" ("lax", "strict" or "none"),
// "insecure" and "max_age". Keys (secrets) never come from this file: set
// Config.Keys in code.
//
// A key the file leaves out keeps its zero value, so the returned Config
// holds the settings as read, not the defaults: NewManager fills those in.
// LoadConfig does validate the result as NewManager would, so a Config it
// returns is accepted by NewManager once valid Keys are added.
//
// An unknown key, a key given twice, a null, a value of the wrong type, a
// negative number (except max_sessions_per_user -1), a time other than 0
// outside [MinDuration, MaxDuration] (1ms to 100 years), an unknown name,
// broken JSON or data after the object is an error wrapping
// ErrInvalidConfig whose text names the file and the key, or the line and
// column of broken JSON. When the file
// cannot be read the error also wraps the os error, so
// errors.Is(err, fs.ErrNotExist) works.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	c, err := parseConfig(data)
	if err == nil {
		err = c.withDefaults().validate()
	}
	if err != nil {
		return Config{}, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, path, err)
	}
	return c, nil
}

// parseConfig decodes a config file's bytes.
func parseConfig(data []byte) (Config, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 BOM some editors write
	top, err := decodeObject(data)
	if err != nil {
		return Config{}, err
	}
	var c Config
	for _, key := range slices.Sorted(maps.Keys(top)) {
		raw := top[key]
		var err error
		switch key {
		case "inactive_timeout":
			c.IdleTimeout, err = parseSeconds(raw)
		case "absolute_timeout":
			c.AbsoluteTimeout, err = parseSeconds(raw)
		case "cleanup_interval":
			c.CleanupInterval, err = parseSeconds(raw)
		case "max_sessions_per_user":
			c.MaxSessionsPerUser, err = parseInt(raw)
		case "enable_auto_cleanup":
			var on bool
			on, err = parseBool(raw)
			c.DisableAutoCleanup = !on
		case "limit_policy":
			var s string
			if s, err = parseString(raw); err == nil {
				switch s {
				case "evict_oldest":
					c.LimitPolicy = EvictOldest
				case "reject_new":
					c.LimitPolicy = RejectNew
				default:
					err = fmt.Errorf(`want "evict_oldest" or "reject_new", got %q`, s)
				}
			}
		case "cookie":
			if c.Cookie, err = parseCookie(raw); err != nil {
				return Config{}, err // already names the key
			}
		default:
			return Config{}, unknownKey(key)
		}
		if err != nil {
			return Config{}, fmt.Errorf("%q: %w", key, err)
		}
	}
	return c, nil
}

func parseCookie(raw json.RawMessage) (CookieConfig, error) {
	if k := kind(raw); k != "object" {
		return CookieConfig{}, fmt.Errorf(`"cookie": want an object, got %s`, k)
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return CookieConfig{}, fmt.Errorf(`"cookie": %w`, err)
	}
	var cc CookieConfig
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		raw := obj[key]
		var err error
		switch key {
		case "name":
			cc.Name, err = parseString(raw)
		case "path":
			cc.Path, err = parseString(raw)
		case "domain":
			cc.Domain, err = parseString(raw)
		case "insecure":
			cc.Insecure, err = parseBool(raw)
		case "max_age":
			cc.MaxAge, err = parseSeconds(raw)
		case "same_site":
			var s string
			if s, err = parseString(raw); err == nil {
				switch s {
				case "lax":
					cc.SameSite = http.SameSiteLaxMode
				case "strict":
					cc.SameSite = http.SameSiteStrictMode
				case "none":
					cc.SameSite = http.SameSiteNoneMode
				default:
					err = fmt.Errorf(`want "lax", "strict" or "none", got %q`, s)
				}
			}
		default:
			return CookieConfig{}, unknownKey("cookie." + key)
		}
		if err != nil {
			return CookieConfig{}, fmt.Errorf("%q: %w", "cookie."+key, err)
		}
	}
	return cc, nil
}

func unknownKey(key string) error {
	if strings.Contains(strings.ToLower(key), "key") || strings.Contains(strings.ToLower(key), "secret") {
		return fmt.Errorf("unknown key %q (keys are secrets: set Config.Keys in code, never in this file)", key)
	}
	return fmt.Errorf("unknown key %q", key)
}

// decodeObject decodes a JSON object into its raw members. Broken JSON is
// reported with its line and column.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			// Offset counts the bad byte; at the end of input it is len(data).
			p := int(se.Offset)
			if p > 0 && p <= len(data) && se.Error() != "unexpected end of JSON input" {
				p--
			}
			p = min(p, len(data))
			line := 1 + bytes.Count(data[:p], []byte("\n"))
			col := p - bytes.LastIndexByte(data[:p], '\n')
			return nil, fmt.Errorf("line %d, column %d: %w", line, col, err)
		}
		return nil, fmt.Errorf("want a JSON object, got %s", kind(data))
	}
	if obj == nil {
		return nil, errors.New("want a JSON object, got null")
	}
	if k, ok := duplicateKey(data); ok {
		return nil, fmt.Errorf("key %q is given twice (JSON would keep only the last one, silently)", k)
	}
	return obj, nil
}

// duplicateKey returns a member name that occurs twice in the JSON object
// data, which must be valid JSON. Nested objects are not looked into.
func duplicateKey(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '{'
		return "", false
	}
	seen := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		k, _ := t.(string)
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// kind names the JSON type of a valid raw value.
func kind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// maxSeconds is MaxDuration in whole seconds.
const maxSeconds = int64(MaxDuration / time.Second)

// parseSeconds reads a time key: a number of seconds or a Go duration
// string, 0 or within [MinDuration, MaxDuration].
func parseSeconds(raw json.RawMessage) (time.Duration, error) {
	var d time.Duration
	switch k := kind(raw); k {
	case "string":
		s, _ := parseString(raw)
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf(`bad duration %q: want a number of seconds or a Go duration such as "30m"`, s)
		}
		if d < 0 {
			return 0, fmt.Errorf("must not be negative (got %q)", s)
		}
	case "number":
		s := string(bytes.TrimSpace(raw))
		f, err := strconv.ParseFloat(s, 64) // err is ErrRange for ±Inf
		switch {
		case f < 0:
			return 0, fmt.Errorf("must not be negative (got %s)", s)
		case err != nil || f > float64(maxSeconds):
			return 0, fmt.Errorf("%s seconds is over the maximum of 100 years (%d seconds)", s, maxSeconds)
		case f > 0 && f*float64(time.Second) < float64(MinDuration):
			return 0, fmt.Errorf("%s seconds is under the 1ms minimum", s)
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			d = time.Duration(n) * time.Second
		} else {
			d = time.Duration(math.Round(f * float64(time.Second)))
		}
	default:
		return 0, fmt.Errorf(`want a number of seconds or a duration string such as "30m", got %s`, k)
	}
	switch {
	case d > 0 && d < MinDuration:
		return 0, fmt.Errorf("%s is under the 1ms minimum", raw)
	case d > MaxDuration:
		return 0, fmt.Errorf("%s is over the maximum of 100 years", raw)
	}
	return d, nil
}

func parseInt(raw json.RawMessage) (int, error) {
	if k := kind(raw); k != "number" {
		return 0, fmt.Errorf("want an integer, got %s", k)
	}
	s := string(bytes.TrimSpace(raw))
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("want an integer, got %s", s)
	}
	if n < Unlimited {
		return 0, fmt.Errorf("must not be negative, except -1 for unlimited (got %d)", n)
	}
	return n, nil
}

func parseBool(raw json.RawMessage) (bool, error) {
	if k := kind(raw); k != "boolean" {
		return false, fmt.Errorf("want true or false, got %s", k)
	}
	return bytes.Equal(bytes.TrimSpace(raw), []byte("true")), nil
}

func parseString(raw json.RawMessage) (string, error) {
	if k := kind(raw); k != "string" {
		return "", fmt.Errorf("want a string, got %s", k)
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}
