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
