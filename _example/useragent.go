package main

import "strings"

// describeDevice turns a User-Agent header into a short label such as
// "Firefox 128 on Windows", good enough to tell a user's devices apart on
// the "Your devices" page. It looks for a few well-known tokens in a fixed
// order (Edge and Opera announce themselves as Chrome too, and every
// Chromium-based browser as Safari); anything else is "Unknown browser".
// It is a display helper, not a security decision: the header is whatever the
// client sent.
func describeDevice(ua string) string {
	if strings.TrimSpace(ua) == "" {
		return "Unknown device"
	}
	browser := describeBrowser(ua)
	if os := describeOS(ua); os != "" {
		return browser + " on " + os
	}
	return browser
}

func describeBrowser(ua string) string {
	// Product tokens, most specific first.
	browsers := [...]struct{ token, name string }{
		{"Edg/", "Edge"},
		{"EdgiOS/", "Edge"},
		{"EdgA/", "Edge"},
		{"OPR/", "Opera"},
		{"SamsungBrowser/", "Samsung Internet"},
		{"FxiOS/", "Firefox"},
		{"Firefox/", "Firefox"},
		{"HeadlessChrome/", "Headless Chrome"},
		{"CriOS/", "Chrome"},
		{"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"},
		{"curl/", "curl"},
		{"Go-http-client/", "Go HTTP client"},
	}
	for _, b := range browsers {
		if v, ok := productVersion(ua, b.token); ok {
			return b.name + v
		}
	}
	if strings.Contains(ua, "Safari/") {
		v, _ := productVersion(ua, "Version/")
		return "Safari" + v
	}
	return "Unknown browser"
}

// productVersion finds token in ua and returns " " and the major version that
// follows it ("" when there is none), and whether token was found.
func productVersion(ua, token string) (string, bool) {
	i := strings.Index(ua, token)
	if i < 0 {
		return "", false
	}
	rest := ua[i+len(token):]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	if end == 0 {
		return "", true
	}
	return " " + rest[:end], true
}

func describeOS(ua string) string {
	switch {
	case strings.Contains(ua, "Windows"):
		return "Windows"
	case strings.Contains(ua, "Android"):
		return "Android"
	case strings.Contains(ua, "iPad"):
		return "iPadOS"
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPod"):
		return "iOS"
	case strings.Contains(ua, "Mac OS X"), strings.Contains(ua, "Macintosh"):
		return "macOS"
	case strings.Contains(ua, "CrOS"):
		return "ChromeOS"
	case strings.Contains(ua, "Linux"), strings.Contains(ua, "X11"):
		return "Linux"
	}
	return ""
}
