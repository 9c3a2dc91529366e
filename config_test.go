package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seedConfig is the file the original Python system wrote.
const seedConfig = `{ "inactive_timeout": 1800, "cleanup_interval": 300,
  "max_sessions_per_user": 5, "enable_auto_cleanup": true }`

// writeConfig writes content to a file in a fresh temporary directory and
// returns its path.
func writeConfig(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "session_config.json")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestLoadConfig(t *testing.T) {
	seed := Config{IdleTimeout: 30 * time.Minute, CleanupInterval: 5 * time.Minute, MaxSessionsPerUser: 5}
	tests := []struct {
		name string
		json string
		want Config
	}{
		{"seed file", seedConfig, seed},
		{"empty object keeps zero values", `{}`, Config{}},
		{"surrounding white space and BOM", "\xef\xbb\xbf\n\t " + seedConfig + " \r\n", seed},
		{"auto cleanup off", `{"enable_auto_cleanup": false}`, Config{DisableAutoCleanup: true}},
		{"duration strings", `{"inactive_timeout": "30m", "cleanup_interval": "1m30s", "absolute_timeout": "12h"}`,
			Config{IdleTimeout: 30 * time.Minute, CleanupInterval: 90 * time.Second, AbsoluteTimeout: 12 * time.Hour}},
		{"zero duration string", `{"inactive_timeout": "0s"}`, Config{}},
		{"fractional seconds", `{"inactive_timeout": 1.5, "cleanup_interval": 0.3, "absolute_timeout": 2e3}`,
			Config{IdleTimeout: 1500 * time.Millisecond, CleanupInterval: 300 * time.Millisecond, AbsoluteTimeout: 2000 * time.Second}},
		{"negative zero", `{"inactive_timeout": -0, "cleanup_interval": -0.0}`, Config{}},
		{"100 years of seconds", `{"absolute_timeout": 3153600000}`, Config{AbsoluteTimeout: MaxDuration}},
		{"1ms, the shortest", `{"inactive_timeout": 0.001, "cleanup_interval": "1ms"}`,
			Config{IdleTimeout: time.Millisecond, CleanupInterval: time.Millisecond}},
		{"unlimited sessions", `{"max_sessions_per_user": -1}`, Config{MaxSessionsPerUser: Unlimited}},
		{"evict_oldest", `{"limit_policy": "evict_oldest"}`, Config{LimitPolicy: EvictOldest}},
		{"reject_new", `{"limit_policy": "reject_new", "max_sessions_per_user": 1}`,
			Config{LimitPolicy: RejectNew, MaxSessionsPerUser: 1}},
		{"empty cookie", `{"cookie": {}}`, Config{}},
		{"full cookie", `{"cookie": {"name": "sid", "path": "/app", "domain": "example.com",
			"same_site": "strict", "insecure": true, "max_age": 3600}}`,
			Config{Cookie: CookieConfig{Name: "sid", Path: "/app", Domain: "example.com",
				SameSite: http.SameSiteStrictMode, Insecure: true, MaxAge: time.Hour}}},
		{"cookie same_site lax, max_age string", `{"cookie": {"same_site": "lax", "max_age": "24h"}}`,
			Config{Cookie: CookieConfig{SameSite: http.SameSiteLaxMode, MaxAge: 24 * time.Hour}}},
		{"secure cookie with same_site none", `{"cookie": {"name": "__Secure-sid", "same_site": "none"}}`,
			Config{Cookie: CookieConfig{Name: "__Secure-sid", SameSite: http.SameSiteNoneMode}}},
		{"__Host- cookie", `{"cookie": {"name": "__Host-sid", "path": "/"}}`,
			Config{Cookie: CookieConfig{Name: "__Host-sid", Path: "/"}}},
		{"insecure cookie gets a plain default name", `{"cookie": {"insecure": true, "same_site": "strict"}}`,
			Config{Cookie: CookieConfig{Insecure: true, SameSite: http.SameSiteStrictMode}}},
		{"every key", `{"inactive_timeout": 600, "absolute_timeout": "8h", "cleanup_interval": 60,
			"max_sessions_per_user": 3, "limit_policy": "reject_new", "enable_auto_cleanup": false,
			"cookie": {"name": "app_session", "path": "/", "domain": ".example.org", "same_site": "none",
			"insecure": false, "max_age": 86400.5}}`,
			Config{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: 8 * time.Hour, CleanupInterval: time.Minute,
				MaxSessionsPerUser: 3, LimitPolicy: RejectNew, DisableAutoCleanup: true,
				Cookie: CookieConfig{Name: "app_session", Path: "/", Domain: ".example.org",
					SameSite: http.SameSiteNoneMode, MaxAge: 86400*time.Second + 500*time.Millisecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfig(writeConfig(t, tt.json))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "LoadConfig returns the values as read")
			_, err = got.normalize()
			assert.NoError(t, err, "a loaded config must normalize")
		})
	}
}

func TestLoadConfigShippedFile(t *testing.T) {
	got, err := LoadConfig(filepath.Join("config", "session_config.json"))
	require.NoError(t, err)
	assert.Equal(t, Config{IdleTimeout: 30 * time.Minute, CleanupInterval: 5 * time.Minute, MaxSessionsPerUser: 5}, got)

	// The shipped file holds exactly the seed's settings, in its units.
	data, err := os.ReadFile(filepath.Join("config", "session_config.json"))
	require.NoError(t, err)
	assert.JSONEq(t, seedConfig, string(data))

	n, err := got.normalize()
	require.NoError(t, err)
	assert.Equal(t, DefaultIdleTimeout, n.IdleTimeout)
	assert.Equal(t, DefaultCleanupInterval, n.CleanupInterval)
	assert.Equal(t, DefaultMaxSessionsPerUser, n.MaxSessionsPerUser)
	assert.False(t, n.DisableAutoCleanup)
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want string // the error text after the file name
	}{
		// unknown keys
		{"unknown key", `{"inactive_timeout": 1800, "idle": 5}`, `unknown key "idle"`},
		{"key names are case sensitive", `{"Inactive_Timeout": 1800}`, `unknown key "Inactive_Timeout"`},
		{"keys never come from the file", `{"keys": ["c2VjcmV0"]}`, `unknown key "keys" (keys are secrets: set Config.Keys in code`},
		{"unknown cookie key", `{"cookie": {"secure": true}}`, `unknown key "cookie.secure"`},
		{"no keys in cookie either", `{"cookie": {"hash_key": "x"}}`, `unknown key "cookie.hash_key" (keys are secrets`},

		// negative numbers
		{"negative inactive_timeout", `{"inactive_timeout": -1}`, `"inactive_timeout": must not be negative (got -1)`},
		{"negative fraction", `{"cleanup_interval": -0.5}`, `"cleanup_interval": must not be negative (got -0.5)`},
		{"negative duration string", `{"absolute_timeout": "-5m"}`, `"absolute_timeout": must not be negative (got "-5m")`},
		{"negative cookie max_age", `{"cookie": {"max_age": -1}}`, `"cookie.max_age": must not be negative (got -1)`},
		{"negative huge", `{"inactive_timeout": -1e400}`, `"inactive_timeout": must not be negative`},
		{"max_sessions_per_user below -1", `{"max_sessions_per_user": -2}`,
			`"max_sessions_per_user": must not be negative, except -1 for unlimited (got -2)`},

		// out of range
		{"seconds overflow a Duration", `{"inactive_timeout": 9223372037}`, `"inactive_timeout": 9223372037 seconds is over the maximum of 100 years`},
		{"9e9 seconds (285 years)", `{"inactive_timeout": 9e9}`, `"inactive_timeout": 9e9 seconds is over the maximum of 100 years (3153600000 seconds)`},
		{"max_age that issued Max-Age=0", `{"cookie": {"max_age": 9223372036}}`, `"cookie.max_age": 9223372036 seconds is over the maximum`},
		{"one second over", `{"absolute_timeout": 3153600001}`, `"absolute_timeout": 3153600001 seconds is over the maximum`},
		{"huge float", `{"inactive_timeout": 1e300}`, `"inactive_timeout": 1e300 seconds is over the maximum`},
		{"beyond float64", `{"inactive_timeout": 1e400}`, `"inactive_timeout": 1e400 seconds is over the maximum`},
		{"under a nanosecond", `{"inactive_timeout": 1e-10}`, `"inactive_timeout": 1e-10 seconds is under the 1ms minimum`},
		{"under a millisecond", `{"cleanup_interval": 0.0009}`, `"cleanup_interval": 0.0009 seconds is under the 1ms minimum`},
		{"duration string under 1ms", `{"inactive_timeout": "999us"}`, `"inactive_timeout": "999us" is under the 1ms minimum`},
		{"duration string over 100 years", `{"absolute_timeout": "876001h"}`, `"absolute_timeout": "876001h" is over the maximum of 100 years`},
		{"duration string overflow", `{"inactive_timeout": "3000000h"}`, `"inactive_timeout": bad duration "3000000h"`},

		// a key given twice: JSON would keep the last one, silently
		{"key twice", `{"max_sessions_per_user": 5, "inactive_timeout": 60, "max_sessions_per_user": -1}`,
			`key "max_sessions_per_user" is given twice`},
		{"cookie key twice", `{"cookie": {"name": "a", "name": "b"}}`, `"cookie": key "name" is given twice`},

		// wrong types and nulls
		{"boolean duration", `{"inactive_timeout": true}`, `"inactive_timeout": want a number of seconds or a duration string such as "30m", got boolean`},
		{"null duration", `{"cleanup_interval": null}`, `"cleanup_interval": want a number of seconds or a duration string such as "30m", got null`},
		{"object duration", `{"absolute_timeout": {}}`, `"absolute_timeout": want a number of seconds or a duration string such as "30m", got object`},
		{"bad duration string", `{"inactive_timeout": "abc"}`, `"inactive_timeout": bad duration "abc"`},
		{"duration string without unit", `{"inactive_timeout": "1800"}`, `"inactive_timeout": bad duration "1800"`},
		{"empty duration string", `{"inactive_timeout": ""}`, `"inactive_timeout": bad duration ""`},
		{"fractional session count", `{"max_sessions_per_user": 2.5}`, `"max_sessions_per_user": want an integer, got 2.5`},
		{"string session count", `{"max_sessions_per_user": "5"}`, `"max_sessions_per_user": want an integer, got string`},
		{"null session count", `{"max_sessions_per_user": null}`, `"max_sessions_per_user": want an integer, got null`},
		{"huge session count", `{"max_sessions_per_user": 99999999999999999999}`, `"max_sessions_per_user": want an integer, got 99999999999999999999`},
		{"string boolean", `{"enable_auto_cleanup": "yes"}`, `"enable_auto_cleanup": want true or false, got string`},
		{"null boolean", `{"enable_auto_cleanup": null}`, `"enable_auto_cleanup": want true or false, got null`},
		{"number limit_policy", `{"limit_policy": 1}`, `"limit_policy": want a string, got number`},
		{"unknown limit_policy", `{"limit_policy": "oldest"}`, `"limit_policy": want "evict_oldest" or "reject_new", got "oldest"`},
		{"limit_policy is lower case", `{"limit_policy": "REJECT_NEW"}`, `"limit_policy": want "evict_oldest" or "reject_new", got "REJECT_NEW"`},
		{"cookie not an object", `{"cookie": "sid"}`, `"cookie": want an object, got string`},
		{"null cookie", `{"cookie": null}`, `"cookie": want an object, got null`},
		{"array cookie", `{"cookie": []}`, `"cookie": want an object, got array`},
		{"number cookie name", `{"cookie": {"name": 1}}`, `"cookie.name": want a string, got number`},
		{"null cookie path", `{"cookie": {"path": null}}`, `"cookie.path": want a string, got null`},
		{"string insecure", `{"cookie": {"insecure": "true"}}`, `"cookie.insecure": want true or false, got string`},
		{"unknown same_site", `{"cookie": {"same_site": "default"}}`, `"cookie.same_site": want "lax", "strict" or "none", got "default"`},
		{"empty same_site", `{"cookie": {"same_site": ""}}`, `"cookie.same_site": want "lax", "strict" or "none", got ""`},
		{"bad max_age", `{"cookie": {"max_age": "1 day"}}`, `"cookie.max_age": bad duration "1 day"`},

		// whole-file shape
		{"top level array", `[{"inactive_timeout": 1800}]`, `want a JSON object, got array`},
		{"top level null", `null`, `want a JSON object, got null`},
		{"top level number", `1800`, `want a JSON object, got number`},

		// settings the manager would reject, caught at load time
		{"invalid cookie name", `{"cookie": {"name": "my session"}}`, `Cookie.Name "my session" is not a valid cookie name`},
		{"__Host- with insecure", `{"cookie": {"name": "__Host-sid", "insecure": true}}`, `Cookie.Name "__Host-sid" requires Secure`},
		{"__Host- with domain", `{"cookie": {"name": "__Host-sid", "domain": "example.com"}}`, `Cookie.Name "__Host-sid" forbids a Domain`},
		{"same_site none with insecure", `{"cookie": {"same_site": "none", "insecure": true}}`, `Cookie.SameSite None requires Secure`},
		{"relative path", `{"cookie": {"path": "app"}}`, `Cookie.Path must start with "/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.json)
			got, err := LoadConfig(path)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, Config{}, got)
			assert.Equal(t, "sessions: invalid config: "+path+": ", err.Error()[:len("sessions: invalid config: "+path+": ")],
				"the error starts with the sentinel and the file: %v", err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoadConfigBrokenJSON(t *testing.T) {
	tests := []struct {
		name string
		json string
		want string
	}{
		{"empty file", ``, `line 1, column 1: unexpected end of JSON input`},
		{"bad value on line 3", "{\n  \"inactive_timeout\": 1800,\n  \"cleanup_interval\": x\n}",
			`line 3, column 23: invalid character 'x' looking for beginning of value`},
		{"trailing comma", "{\"inactive_timeout\": 1800,\n}", `line 2, column 1: invalid character '}' looking for beginning of object key string`},
		{"single quotes", `{'inactive_timeout': 1800}`, `line 1, column 2: invalid character '\''`},
		{"truncated", "{\n  \"inactive_timeout\": 1800", `line 2, column 27: unexpected end of JSON input`},
		{"comment", "{\n// idle\n}", `line 2, column 1: invalid character '/'`},
		{"trailing object", `{"inactive_timeout": 1800} {}`, `line 1, column 28: invalid character '{' after top-level value`},
		{"trailing garbage", "{}\nx", `line 2, column 1: invalid character 'x' after top-level value`},
		{"broken cookie", `{"cookie": {"name": }}`, `line 1, column 21: invalid character '}' looking for beginning of value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.json)
			_, err := LoadConfig(path)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			var se *json.SyntaxError
			assert.ErrorAs(t, err, &se)
			assert.Contains(t, err.Error(), path+": "+tt.want)
		})
	}
}

func TestLoadConfigUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	_, err := LoadConfig(missing)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), missing)

	dir := t.TempDir()
	_, err = LoadConfig(dir)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), dir)
}

func TestConfigNormalize(t *testing.T) {
	key32, key64 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 64)
	defaults := func(edit func(*Config)) Config {
		c := Config{IdleTimeout: DefaultIdleTimeout, CleanupInterval: DefaultCleanupInterval,
			MaxSessionsPerUser: DefaultMaxSessionsPerUser,
			Cookie:             CookieConfig{Name: "__Host-session", Path: "/", SameSite: http.SameSiteLaxMode}}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero value", Config{}, defaults(nil)},
		{"explicit values kept", Config{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour, CleanupInterval: time.Second,
			MaxSessionsPerUser: 2, LimitPolicy: RejectNew, DisableAutoCleanup: true},
			defaults(func(c *Config) {
				c.IdleTimeout, c.AbsoluteTimeout, c.CleanupInterval = time.Minute, time.Hour, time.Second
				c.MaxSessionsPerUser, c.LimitPolicy, c.DisableAutoCleanup = 2, RejectNew, true
			})},
		{"unlimited stays unlimited", Config{MaxSessionsPerUser: Unlimited},
			defaults(func(c *Config) { c.MaxSessionsPerUser = Unlimited })},
		{"insecure gets plain name", Config{Cookie: CookieConfig{Insecure: true}},
			defaults(func(c *Config) { c.Cookie.Name, c.Cookie.Insecure = "session", true })},
		{"domain gets plain name", Config{Cookie: CookieConfig{Domain: "example.com"}},
			defaults(func(c *Config) { c.Cookie.Name, c.Cookie.Domain = "session", "example.com" })},
		{"sub-path gets plain name", Config{Cookie: CookieConfig{Path: "/app"}},
			defaults(func(c *Config) { c.Cookie.Name, c.Cookie.Path = "session", "/app" })},
		{"root path keeps __Host-", Config{Cookie: CookieConfig{Path: "/"}}, defaults(nil)},
		{"explicit cookie kept", Config{Cookie: CookieConfig{Name: "__Secure-id", Path: "/x", Domain: "a.example",
			SameSite: http.SameSiteNoneMode, MaxAge: time.Hour}},
			defaults(func(c *Config) {
				c.Cookie = CookieConfig{Name: "__Secure-id", Path: "/x", Domain: "a.example", SameSite: http.SameSiteNoneMode, MaxAge: time.Hour}
			})},
		{"SameSite default mode kept", Config{Cookie: CookieConfig{SameSite: http.SameSiteDefaultMode}},
			defaults(func(c *Config) { c.Cookie.SameSite = http.SameSiteDefaultMode })},
		{"strict with insecure", Config{Cookie: CookieConfig{SameSite: http.SameSiteStrictMode, Insecure: true}},
			defaults(func(c *Config) {
				c.Cookie.Name, c.Cookie.SameSite, c.Cookie.Insecure = "session", http.SameSiteStrictMode, true
			})},
		{"keys of 32 and 64 bytes", Config{Keys: [][]byte{key32, key64}},
			defaults(func(c *Config) { c.Keys = [][]byte{key32, key64} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.normalize()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			again, err := got.normalize()
			require.NoError(t, err)
			assert.Equal(t, got, again, "normalize is idempotent")
		})
	}
}

func TestConfigNormalizeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want string
	}{
		{"negative IdleTimeout", Config{IdleTimeout: -time.Second}, "IdleTimeout must not be negative (got -1s)"},
		{"negative AbsoluteTimeout", Config{AbsoluteTimeout: -1}, "AbsoluteTimeout must not be negative (got -1ns)"},
		{"negative CleanupInterval", Config{CleanupInterval: -time.Minute}, "CleanupInterval must not be negative (got -1m0s)"},
		{"negative MaxAge", Config{Cookie: CookieConfig{MaxAge: -time.Second}}, "Cookie.MaxAge must not be negative (got -1s)"},
		{"MaxSessionsPerUser below Unlimited", Config{MaxSessionsPerUser: -2}, "MaxSessionsPerUser must be positive, 0 (default 5) or Unlimited (-1) (got -2)"},
		{"unknown LimitPolicy", Config{LimitPolicy: 2}, "LimitPolicy must be EvictOldest or RejectNew (got 2)"},
		{"negative LimitPolicy", Config{LimitPolicy: -1}, "LimitPolicy must be EvictOldest or RejectNew (got -1)"},
		{"short key", Config{Keys: [][]byte{bytes.Repeat([]byte{1}, 32), make([]byte, 16)}}, "Keys[1] is 16 bytes; want 32 or 64"},
		{"all-zero key", Config{Keys: [][]byte{bytes.Repeat([]byte{1}, 32), make([]byte, 64)}}, "Keys[1] is all zero bytes"},

		// durations that cannot be meant
		{"seconds without a unit", Config{IdleTimeout: 1800, CleanupInterval: 300},
			"IdleTimeout 1.8µs is under the 1ms minimum: did you mean 1800 * time.Second?"},
		{"interval without a unit", Config{CleanupInterval: 300}, "CleanupInterval 300ns is under the 1ms minimum: did you mean 300 * time.Second?"},
		{"1ns interval", Config{CleanupInterval: 1}, "CleanupInterval 1ns is under the 1ms minimum"},
		{"AbsoluteTimeout without a unit", Config{AbsoluteTimeout: 43200}, "AbsoluteTimeout 43.2µs is under the 1ms minimum: did you mean 43200 * time.Second?"},
		{"MaxAge without a unit", Config{Cookie: CookieConfig{MaxAge: 3600}}, "Cookie.MaxAge 3.6µs is under the 1ms minimum: did you mean 3600 * time.Second?"},
		{"IdleTimeout MaxInt64", Config{IdleTimeout: math.MaxInt64}, "IdleTimeout 2562047h47m16.854775807s is over the maximum, sessions.MaxDuration (100 years)"},
		{"250-year AbsoluteTimeout", Config{AbsoluteTimeout: 250 * 365 * 24 * time.Hour}, "AbsoluteTimeout 2190000h0m0s is over the maximum"},
		{"MaxAge past a Duration of seconds", Config{Cookie: CookieConfig{MaxAge: 9223372036 * time.Second}}, "Cookie.MaxAge 2562047h47m16s is over the maximum"},
		{"a nanosecond over", Config{CleanupInterval: MaxDuration + 1}, "CleanupInterval 876000h0m0.000000001s is over the maximum"},
		{"empty key", Config{Keys: [][]byte{{}}}, "Keys[0] is 0 bytes; want 32 or 64"},
		{"48-byte key", Config{Keys: [][]byte{make([]byte, 48)}}, "Keys[0] is 48 bytes; want 32 or 64"},
		{"name with space", Config{Cookie: CookieConfig{Name: "my session"}}, `Cookie.Name "my session" is not a valid cookie name`},
		{"name with =", Config{Cookie: CookieConfig{Name: "a=b"}}, `Cookie.Name "a=b" is not a valid cookie name`},
		{"name with ;", Config{Cookie: CookieConfig{Name: "a;b"}}, `Cookie.Name "a;b" is not a valid cookie name`},
		{"name with control", Config{Cookie: CookieConfig{Name: "a\x01"}}, `Cookie.Name "a\x01" is not a valid cookie name`},
		{"name with non-ASCII", Config{Cookie: CookieConfig{Name: "sessión"}}, `Cookie.Name "sessión" is not a valid cookie name`},
		{"__Host- insecure", Config{Cookie: CookieConfig{Name: "__Host-s", Insecure: true}}, `Cookie.Name "__Host-s" requires Secure, but Cookie.Insecure is set`},
		{"__host- any case", Config{Cookie: CookieConfig{Name: "__host-s", Insecure: true}}, `Cookie.Name "__host-s" requires Secure`},
		{"__Host- domain", Config{Cookie: CookieConfig{Name: "__Host-s", Domain: "example.com"}}, `Cookie.Name "__Host-s" forbids a Domain (got Cookie.Domain "example.com")`},
		{"__Host- path", Config{Cookie: CookieConfig{Name: "__Host-s", Path: "/app"}}, `Cookie.Name "__Host-s" requires Path "/" (got Cookie.Path "/app")`},
		{"__Secure- insecure", Config{Cookie: CookieConfig{Name: "__Secure-s", Insecure: true}}, `Cookie.Name "__Secure-s" requires Secure, but Cookie.Insecure is set`},
		{"SameSite None insecure", Config{Cookie: CookieConfig{SameSite: http.SameSiteNoneMode, Insecure: true}}, "Cookie.SameSite None requires Secure"},
		{"relative Path", Config{Cookie: CookieConfig{Path: "app"}}, `Cookie.Path must start with "/" and contain no ';' or control characters (got "app")`},
		{"Path with ;", Config{Cookie: CookieConfig{Path: "/a;b"}}, `Cookie.Path must start with "/"`},
		{"Path with newline", Config{Cookie: CookieConfig{Path: "/a\nb"}}, `Cookie.Path must start with "/"`},
		{"Domain with scheme", Config{Cookie: CookieConfig{Domain: "https://example.com"}}, `Cookie.Domain must be a host name such as "example.com" (got "https://example.com")`},
		{"SameSite out of range", Config{Cookie: CookieConfig{SameSite: 7}}, "Cookie.SameSite must be http.SameSiteDefaultMode, LaxMode, StrictMode or NoneMode (got 7)"},
		{"SameSite negative", Config{Cookie: CookieConfig{SameSite: -1}}, "Cookie.SameSite must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.normalize()
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, "sessions: invalid config: "+tt.want, err.Error()[:min(len(err.Error()), len("sessions: invalid config: "+tt.want))])
			assert.Equal(t, Config{}, got)
		})
	}
}

func TestConfigNormalizeKeys(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789ABCDEF") // 32 printable bytes
	keys := [][]byte{secret, bytes.Repeat([]byte("k"), 64)}
	in := Config{Keys: keys}

	got, err := in.normalize()
	require.NoError(t, err)
	assert.Equal(t, keys, got.Keys)

	// The result shares no memory with the caller's slice.
	got.Keys[0][0] = 'X'
	got.Keys[1] = nil
	assert.Equal(t, byte('0'), secret[0], "normalize copies each key")
	assert.Len(t, keys[1], 64, "normalize copies the outer slice")
	assert.Same(t, &keys[0][0], &in.Keys[0][0], "the caller's Config is untouched")

	// A bad key is named by index, never printed.
	short := []byte("short-secret-value")
	_, err = Config{Keys: [][]byte{secret, short}}.normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Keys[1] is 18 bytes")
	assert.NotContains(t, err.Error(), string(short))
	assert.NotContains(t, err.Error(), string(secret))

	got, err = Config{}.normalize()
	require.NoError(t, err)
	assert.Nil(t, got.Keys, "normalize does not make keys")
}

func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(seedConfig))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"inactive_timeout": "30m", "absolute_timeout": 1.5e3, "max_sessions_per_user": -1, "limit_policy": "reject_new"}`))
	f.Add([]byte(`{"cookie": {"name": "__Host-s", "path": "/", "domain": "", "same_site": "none", "insecure": false, "max_age": "24h"}}`))
	f.Add([]byte(`{"cookie": {"name": "__Secure-x", "insecure": true}}`))
	f.Add([]byte("{\n  \"inactive_timeout\": -1e400,\n}"))
	f.Add([]byte(`{"keys": null} []`))

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// A new file per input: rewriting (truncating) one file is an
		// order of magnitude slower on ext4.
		file, err := os.CreateTemp(dir, "*.json")
		require.NoError(t, err)
		path := file.Name()
		defer os.Remove(path)
		_, err = file.Write(data)
		require.NoError(t, errors.Join(err, file.Close()))

		c, err := LoadConfig(path)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.True(t, strings.HasPrefix(err.Error(), "sessions: invalid config: "+path+": "), err.Error())
			if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
				require.Contains(t, err.Error(), "line ")
			}
			require.Equal(t, Config{}, c)
			return
		}
		n, err := c.normalize()
		require.NoError(t, err, "LoadConfig accepted %q", data)
		again, err := n.normalize()
		require.NoError(t, err)
		require.Equal(t, n, again)
		require.GreaterOrEqual(t, n.IdleTimeout, time.Duration(0))
		require.GreaterOrEqual(t, n.MaxSessionsPerUser, Unlimited)
	})
}

func TestConfigBoundsThemselvesAreLegal(t *testing.T) {
	c := Config{IdleTimeout: MinDuration, CleanupInterval: MinDuration, AbsoluteTimeout: MaxDuration,
		Cookie: CookieConfig{MaxAge: MaxDuration}}
	got, err := c.normalize()
	require.NoError(t, err)
	assert.Equal(t, MaxDuration, got.AbsoluteTimeout)
	// The longest deadline, counted from now, still fits a UnixNano.
	assert.Greater(t, time.Now().Add(MaxDuration).UnixNano(), time.Now().UnixNano())
	assert.Less(t, time.Now().Add(MaxDuration).Year(), 2262)
}
