package sessions_test

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/tokyopredictor/sessions"
)

func ExampleLoadConfig() {
	// config/session_config.json holds the seed system's settings:
	// {"inactive_timeout": 1800, "cleanup_interval": 300, "max_sessions_per_user": 5, "enable_auto_cleanup": true}
	cfg, err := sessions.LoadConfig("config/session_config.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Keys (secrets) never come from the file: set them from your secret
	// store before calling sessions.NewManager(cfg), for example
	// cfg.Keys = [][]byte{currentKey, previousKey}.
	fmt.Println(cfg.IdleTimeout, cfg.CleanupInterval, cfg.MaxSessionsPerUser, !cfg.DisableAutoCleanup)

	_, err = sessions.LoadConfig("config/missing.json")
	fmt.Println(errors.Is(err, sessions.ErrInvalidConfig), errors.Is(err, fs.ErrNotExist))
	// Output:
	// 30m0s 5m0s 5 true
	// true true
}

// Durations are time.Duration, counted in nanoseconds: the original
// system's seconds, ported without their unit, are refused with the likely
// fix.
func ExampleNewManager_secondsWithoutUnit() {
	_, err := sessions.NewManager(sessions.Config{IdleTimeout: 1800, CleanupInterval: 300})
	fmt.Println(errors.Is(err, sessions.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// sessions: invalid config: IdleTimeout 1.8µs is under the 1ms minimum: did you mean 1800 * time.Second?
}
