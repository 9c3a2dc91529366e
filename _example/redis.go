package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/redisstore"
)

// openRedisStore connects to the Redis server at addr and returns a
// session store on it and a func that closes the connection. It fails if
// the server does not answer a PING within 5 seconds.
func openRedisStore(ctx context.Context, addr string) (sessions.Store, func() error, error) {
	client := redis.NewClient(&redis.Options{Addr: addr})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("redis at %s: %w", addr, err)
	}
	st, err := redisstore.New(client)
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("redis store: %w", err)
	}
	return st, client.Close, nil
}
