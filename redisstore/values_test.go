package redisstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestLoadedValuesIndependent checks that the byte slices of a loaded
// record do not write into each other.
func TestLoadedValuesIndependent(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c)
	ctx := t.Context()
	r := rec("ivan", time.Hour)
	r.Values = map[string][]byte{"a": []byte("1"), "b": []byte("2"), "big": make([]byte, 70_000)}
	_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
	require.NoError(t, err)
	got, err := s.Activate(ctx, r.ID, time.Now())
	require.NoError(t, err)
	require.Equal(t, r.Values, got.Values)
	require.Equal(t, r.SealedID, got.SealedID)
	got.SealedID = append(got.SealedID, "overwrite"...)
	for k, v := range got.Values {
		got.Values[k] = append(v, "overwrite"...)
	}
	delete(got.Values, "big")
	assert.Equal(t, map[string][]byte{"a": []byte("1overwrite"), "b": []byte("2overwrite")}, got.Values)
	assert.Equal(t, append(r.SealedID, "overwrite"...), got.SealedID)
}
