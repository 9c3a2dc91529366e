package sessions_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// placingStore is a shared store that places the IDs of user sessions at
// 0xbeef, and leaves anonymous ones as drawn.
type placingStore struct{ *sessions.MemoryStore }

func (placingStore) PlaceID(userID string, drawn uint16) uint16 {
	if userID == "" {
		return drawn
	}
	return 0xbeef
}

// TestPlacer: a store that is a sessions.Placer chooses the first 16 bits
// of every new ID of a user's session, Renew keeps them, and the rest of
// the ID stays random.
func TestPlacer(t *testing.T) {
	checkNoLeaks(t)
	cfg := sessions.Config{
		IdleTimeout: time.Hour, DisableAutoCleanup: true, Keys: [][]byte{testKey('p')},
		Cookie: sessions.CookieConfig{Insecure: true},
	}
	m, _ := startManager(t, cfg, sessions.WithStore(placingStore{sessions.NewMemoryStore()}))
	seen := map[string]bool{}
	for range 20 {
		s, err := m.Create(ctx, "ann", nil)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(s.ID(), "beef"), "placed ID %s", s.ID())
		seen[s.ID()] = true
	}
	assert.Len(t, seen, 20, "the other bits stay random")
	anon := 0
	for range 20 {
		s, err := m.Create(ctx, "", nil)
		require.NoError(t, err)
		if strings.HasPrefix(s.ID(), "beef") {
			anon++
		}
	}
	assert.Less(t, anon, 2, "anonymous IDs keep their drawn bits")

	h := renewApp(t, m)
	first, _ := serve(t, h, "/login?user=bob", nil)
	require.NotNil(t, first)
	renewed, w := serve(t, h, "/sudo", first)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NotNil(t, renewed)
	list, err := m.UserSessions(ctx, "bob")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.True(t, strings.HasPrefix(list[0].ID(), "beef"), "Renew keeps the place: %s", list[0].ID())
}
