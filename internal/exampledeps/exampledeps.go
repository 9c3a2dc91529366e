//go:build exampledeps

// Package exampledeps keeps the modules that only _example's tests import
// in go.mod: go mod tidy skips directories starting with an underscore, so
// without this file it would drop them. The build tag keeps it out of
// every build.
package exampledeps

import (
	_ "github.com/chromedp/cdproto/network"
	_ "github.com/chromedp/chromedp"
)
