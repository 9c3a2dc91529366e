package redisstore_test

import (
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/redisstore"
)

// Sessions shared by every process behind a load balancer. Each process
// uses the same Keys (they sign cookies and seal session IDs), the same
// prefix and registers the same hooks. (Compiled, not run: it needs a
// Redis server; README.md shows the same lines.)
func ExampleNew() {
	keys := [][]byte{[]byte("0123456789abcdef0123456789abcdef")} // from your secret store

	// README:begin redisstore
	client := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	store, err := redisstore.New(client, redisstore.WithPrefix("myapp:sessions:"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.NewManager(sessions.Config{Keys: keys}, sessions.WithStore(store))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // ends no session: the other processes still serve them
	// README:end

	log.Fatal(http.ListenAndServe("127.0.0.1:8080", m.Middleware(http.NotFoundHandler())))
}
