package syncjob

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/internal/flock"
)

// lockOutput takes the job lock of the output folder without waiting: an
// overlapping run (a slow run still going when the timer fires again)
// fails at once with an error matching errclass.ErrConflict that names the
// holder. The kernel drops the lock when the holder dies, so a crash never
// leaves a stale lock.
func lockOutput(ctx context.Context, dir string, now time.Time) (*flock.Lock, error) {
	path := filepath.Join(dir, LockName)
	l, err := flock.Acquire(ctx, path, flock.Holder{Since: now, What: "(ccmirror sync)"}, flock.Options{})
	var held *flock.HeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("sync: another ccmirror sync is running on %s (%s; lock %s): %w", dir, held.Holder, path, errclass.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	return l, nil
}
