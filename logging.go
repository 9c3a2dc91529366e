package sessions

import "log/slog"

// LogValue implements slog.LogValuer: a session logs as its log tag (a
// short one-way hash of its ID, the same tag the package's own logs use),
// its user and its times; never its ID or its values.
func (s *Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tag", logID(s.ID())),
		slog.String("user", s.userID),
		slog.Time("created", s.CreatedAt()),
		slog.Time("last_activity", s.LastActivity()),
		slog.Time("expires", s.ExpiresAt()),
	)
}
