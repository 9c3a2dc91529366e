package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// keysEnv is the environment variable that holds the signing keys when no
// -keys-file is given: hex, one key or several separated by commas or
// spaces, the first signing and all verifying (rotation).
const keysEnv = "SESSIONS_KEY"

// loadKeys returns the cookie-signing keys from file (one hex key per line;
// blank lines and lines starting with # are skipped) or, when file is "",
// from env, the value of SESSIONS_KEY. No keys at all is (nil, nil): the
// memory store then signs with a random key made at start.
func loadKeys(file, env string) ([][]byte, error) {
	src, text := keysEnv, env
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading keys: %w", err)
		}
		src, text = file, string(b)
	}
	keys, err := parseKeys(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return keys, nil
}

// errKeyLength says a key is neither 32 nor 64 bytes long.
var errKeyLength = errors.New("a key must be 32 or 64 bytes (64 or 128 hex digits)")

// parseKeys reads hex keys separated by newlines, commas or spaces; lines
// starting with # are comments.
func parseKeys(text string) ([][]byte, error) {
	var keys [][]byte
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, field := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			k, err := hex.DecodeString(field)
			if err != nil {
				return nil, fmt.Errorf("key %d is not hex: %w", len(keys)+1, err)
			}
			if len(k) != 32 && len(k) != 64 {
				return nil, fmt.Errorf("key %d is %d bytes: %w", len(keys)+1, len(k), errKeyLength)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}
