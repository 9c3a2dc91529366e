package redisstore

import "github.com/tokyopredictor/sessions"

// claimsOf returns the claim tokens of records Expired returned.
func claimsOf(recs []sessions.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Claim
	}
	return out
}
