package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/pgstore"
)

// openPostgresStore connects to the PostgreSQL database at url, creates or
// upgrades the store's table (pgstore's Migrate) and returns a session
// store on it and a func that closes the pool. It fails if the server does
// not answer within 5 seconds.
func openPostgresStore(ctx context.Context, url string) (sessions.Store, func() error, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("-postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("postgres at %s: %w", pool.Config().ConnConfig.Host, err)
	}
	st, err := pgstore.New(pool)
	if err == nil {
		err = st.Migrate(pctx)
	}
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("postgres store: %w", err)
	}
	return st, func() error { pool.Close(); return nil }, nil
}
