package staging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ccmirror/ccmirror/internal/flock"
)

// DefaultLockWait is how long Install waits for another install to release
// the staging lock before failing with ErrConflict.
const DefaultLockWait = 10 * time.Second

// acquireLock takes the staging lock (internal/flock), waiting up to wait.
// The kernel drops a flock when its holder dies, so a lock file left behind
// by a killed install never blocks: its stale holder note is reported and
// overwritten.
// notice (may be nil) hears of a wait.
func acquireLock(ctx context.Context, path string, wait time.Duration, bundle string, log *slog.Logger, notice func(string)) (*flock.Lock, error) {
	l, err := flock.Acquire(ctx, path, flock.Holder{What: "installing " + bundle}, flock.Options{
		Wait: wait,
		OnWait: func(h flock.Holder) {
			log.Info("waiting for the staging lock", "lock", path, "holder", h.String(), "wait", wait)
			if notice != nil {
				notice(fmt.Sprintf("waiting up to %s for the staging lock %s, held by %s", wait, path, h))
			}
		},
	})
	var held *flock.HeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("staging %w; wait for it to finish, then retry", err)
	}
	if err != nil {
		return nil, fmt.Errorf("staging %w", err)
	}
	// The lock file is in the checked state folder; still, one that is not
	// root's own regular file was not made by ccmirror.
	if err := checkStateEntry(path, false); err != nil {
		l.Release()
		return nil, fmt.Errorf("staging lock: %w", err)
	}
	if prev := l.Previous; prev.PID != 0 {
		state := "is gone"
		if flock.ProcessAlive(prev.PID) {
			state = "did not clean up (its pid now belongs to another process)"
		}
		log.Warn("recovered a stale staging lock: the previous holder "+state+"; the kernel released its flock when it exited",
			"lock", path, "holder", prev.String())
	}
	return l, nil
}

// lockHeld reports whether an install holds the staging lock of the state
// folder now, and its note, without creating anything.
func lockHeld(state string) (flock.Holder, bool) { return flock.Held(lockPath(state)) }
