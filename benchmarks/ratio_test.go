package benchmarks

import (
	"net/http"
	"testing"

	"github.com/tokyopredictor/sessions/internal/benchkit"
)

// BenchmarkRedisRatio runs this package's Redis store and scs's redisstore
// (with and without IdleTimeout) on the same request, alternating chunks
// of 50 requests (benchkit.Alternate), so that both see the same machine;
// the ratio is ours ÷ scs. 1k live sessions each; start logs in a new user
// each time (the populations grow by b.N sessions).
//
//	go test -run '^$' -bench RedisRatio -benchtime 5000x -count 6 ./benchmarks
func BenchmarkRedisRatio(b *testing.B) {
	requireRedis(b)
	ours := libraryNamed(b, "ours-redis").get(b, 1_000)
	for _, peer := range []string{"scs-redis", "scs-redis-idle"} {
		scs := libraryNamed(b, peer).get(b, 1_000)
		for _, op := range []string{opReadHit, opWriteHit, opStart} {
			b.Run("op="+op+"/peer="+peer, func(b *testing.B) {
				a, c := requestOp(b, ours, op), requestOp(b, scs, op)
				benchkit.Alternate(b, false, 50, "ours", "scs", a, c)
			})
		}
	}
}

// requestOp returns a function that sends the i-th request of op through
// in's handler and fails b on a status other than 200.
func requestOp(b *testing.B, in *instance, op string) func(i int) {
	h := in.handler(op)
	w := benchkit.NewRecorder()
	return func(i int) {
		var r *http.Request
		if op == opStart {
			r = benchkit.NewRequest("")
			r.Header["X-User"] = []string{nextUser()}
		} else {
			r = benchkit.NewRequest(in.cookies[i%len(in.cookies)])
		}
		if err := benchkit.StatusErr(benchkit.Serve(h, w, r)); err != nil {
			b.Fatal(err)
		}
	}
}
