module github.com/tokyopredictor/sessions/benchmarks

go 1.25.0

replace (
	github.com/tokyopredictor/sessions => ../
	github.com/tokyopredictor/sessions/redisstore => ../redisstore
)

require (
	github.com/alexedwards/scs/redisstore v0.0.0-20251002162104-209de6e426de
	github.com/alexedwards/scs/v2 v2.9.0
	github.com/gomodule/redigo v1.9.3
	github.com/gorilla/securecookie v1.1.2
	github.com/gorilla/sessions v1.4.0
	github.com/redis/go-redis/v9 v9.22.0
	github.com/tokyopredictor/sessions v0.0.0-00010101000000-000000000000
	github.com/tokyopredictor/sessions/redisstore v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	go.uber.org/atomic v1.11.0 // indirect
	golang.org/x/sys v0.30.0 // indirect
)
