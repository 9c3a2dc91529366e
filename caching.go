package sessions

import (
	"iter"
	"net/http"
	"strings"
)

// The HTTP caching policy of responses that carry a session.
//
// A response served with a loaded session varies on the request header the
// session came from (Vary: Cookie, or the token header), and so does one
// whose handler asked FromContext and found none (as Django does when the
// session was read): a cache must never serve one user's page to another,
// nor an anonymous page to a signed-in user. A response whose handler never
// looked at the session (a static file) stays cacheable.
//
// A response on which the Manager sets or expires the session cookie (Start,
// End, RememberMe, a re-issued persistent cookie, the expiry of a bad or
// stale cookie) must never be stored by a shared cache: a stored Set-Cookie
// would log every later visitor in as someone else, or out. On such a
// response the Manager adds to whatever Cache-Control the application set,
// never weakening it:
//
//   - "private" (RFC 9111 §5.2.2.7: a shared cache MUST NOT store the
//     response; the browser's own cache may);
//   - `no-cache="Set-Cookie"` (§5.2.2.4: the field is never reused without
//     revalidation; what scs sends), for caches that ignore private;
//   - it removes "public" and "s-maxage", the directives that would let a
//     shared cache store it;
//   - it keeps everything else: "no-store", "no-cache", "max-age" (for the
//     browser's cache) stay as the application set them.
//
// The Middleware applies the policy when the response's header is written,
// so an application that sets Cache-Control after Start (or at all) cannot
// undo it; Start and End outside the Middleware apply it when called.

// addVary adds token to h's Vary header unless it is listed already or Vary
// is "*". buf, when not nil, is used for a Vary header that was empty, so
// that the common case allocates nothing.
func addVary(h http.Header, token string, buf *[1]string) {
	vs := h["Vary"]
	for _, line := range vs {
		for part := range strings.SplitSeq(line, ",") {
			part = strings.TrimSpace(part)
			if part == "*" || strings.EqualFold(part, token) {
				return
			}
		}
	}
	if len(vs) == 0 && buf != nil {
		buf[0] = token
		h["Vary"] = buf[:1:1]
		return
	}
	h["Vary"] = append(vs, token)
}

// privateCache makes h's Cache-Control keep shared caches from storing a
// response that sets the session cookie (see the policy above). It is
// idempotent, and allocates nothing when h complies already.
func privateCache(h http.Header) {
	lines := h["Cache-Control"]
	if len(lines) == 0 {
		h["Cache-Control"] = []string{privateDirectives}
		return
	}
	private, noCache, drop := false, false, false
	for _, line := range lines {
		for d := range directives(line) {
			switch policyOf(d) {
			case keepPrivate:
				private = true
			case keepNoCache:
				noCache = true
			case dropDirective:
				drop = true
			}
		}
	}
	if private && noCache && !drop {
		return
	}
	var out []string
	for _, line := range lines {
		for d := range directives(line) {
			if policyOf(d) != dropDirective {
				out = append(out, d)
			}
		}
	}
	if !private {
		out = append(out, "private")
	}
	if !noCache {
		out = append(out, `no-cache="Set-Cookie"`)
	}
	h["Cache-Control"] = []string{strings.Join(out, ", ")}
}

// privateDirectives is the Cache-Control of a response that sets the
// cookie and had none.
const privateDirectives = `private, no-cache="Set-Cookie"`

// What privateCache does with a directive.
const (
	keepOther = iota
	keepPrivate
	keepNoCache // no-cache, unqualified or naming Set-Cookie
	dropDirective
)

func policyOf(d string) int {
	name, arg, _ := strings.Cut(d, "=")
	name = strings.TrimSpace(name)
	switch {
	case strings.EqualFold(name, "public"), strings.EqualFold(name, "s-maxage"):
		return dropDirective
	case strings.EqualFold(name, "private"):
		if arg != "" {
			return dropDirective // private="field" hides fields only; the unqualified form replaces it
		}
		return keepPrivate
	case strings.EqualFold(name, "no-cache"):
		if arg == "" || strings.Contains(strings.ToLower(arg), "set-cookie") {
			return keepNoCache
		}
	}
	return keepOther
}

// directives yields the directives of a Cache-Control line, trimmed,
// without splitting a quoted argument such as no-cache="a, b".
func directives(line string) iter.Seq[string] {
	return func(yield func(string) bool) {
		start, quoted := 0, false
		for i := 0; i <= len(line); i++ {
			if i < len(line) {
				switch c := line[i]; {
				case c == '"':
					quoted = !quoted
					continue
				case c == '\\' && quoted:
					if i+1 < len(line) {
						i++ // a quoted pair
					}
					continue
				case c != ',' || quoted:
					continue
				}
			}
			if d := strings.TrimSpace(line[start:min(i, len(line))]); d != "" && !yield(d) {
				return
			}
			start = i + 1
		}
	}
}

// setCookie puts line, the Set-Cookie value of the cookie name, on h as
// the response's only Set-Cookie of that name (an earlier one, such as the
// expiry of a stale cookie before a login, is replaced), and applies the
// caching policy.
func setCookie(h http.Header, name, line string) {
	lines := h["Set-Cookie"]
	kept := lines[:0]
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, name); !ok || !strings.HasPrefix(v, "=") {
			kept = append(kept, l)
		}
	}
	h["Set-Cookie"] = append(kept, line)
	addVary(h, "Cookie", nil)
	privateCache(h)
}
