package syncjob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/internal/flock"
)

// LockPath is the job lock of the output folder output for a run whose
// download cache is cacheDir: cacheDir/sync/<sha256 of output's absolute
// path>.lock. It is kept outside the output folder so that an idle run
// changes nothing in the tree that is published or copied across.
func LockPath(cacheDir, output string) (string, error) {
	abs, err := filepath.Abs(output)
	if err != nil {
		return "", fmt.Errorf("sync: %w", err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(cacheDir, "sync", hex.EncodeToString(sum[:16])+".lock"), nil
}

// lockOutput takes the job lock of the output folder dir (LockPath)
// without waiting: an overlapping run (a slow run still going when the
// timer fires again) fails at once with an error matching
// errclass.ErrConflict that names the holder. The kernel drops the lock
// when the holder dies, so a crash never leaves a stale lock.
func lockOutput(ctx context.Context, cacheDir, dir string, now time.Time) (*flock.Lock, error) {
	path, err := LockPath(cacheDir, dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sync: lock: %w", err)
	}
	l, err := flock.Acquire(ctx, path, flock.Holder{Since: now, What: "(ccmirror sync of " + dir + ")"}, flock.Options{})
	var held *flock.HeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("sync: another ccmirror sync is running on %s (%s; lock %s): %w", dir, held.Holder, path, errclass.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	// Earlier versions kept the lock in the output folder: drop it once,
	// unless an older ccmirror holds it now (then this run must not go on).
	old := filepath.Join(dir, legacyLockName)
	if h, held := flock.Held(old); held {
		l.Release()
		return nil, fmt.Errorf("sync: an older ccmirror sync is running on %s (%s; lock %s): %w", dir, h, old, errclass.ErrConflict)
	}
	if err := os.Remove(old); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.Release()
		return nil, fmt.Errorf("sync: %w", err)
	}
	return l, nil
}
