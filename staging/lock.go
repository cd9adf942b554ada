package staging

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultLockWait is how long Install waits for another install to release
// the staging lock before failing with ErrConflict.
const DefaultLockWait = 10 * time.Second

// lockHolder is what a lock holder writes into the lock file so a waiting
// install can name it.
type lockHolder struct {
	PID    int
	Since  time.Time
	Bundle string
}

func (h lockHolder) String() string {
	if h.PID == 0 {
		return "another process (it has not written its pid yet)"
	}
	s := "pid " + strconv.Itoa(h.PID)
	if !h.Since.IsZero() {
		s += " since " + h.Since.Format(time.RFC3339)
	}
	if h.Bundle != "" {
		s += " installing " + h.Bundle
	}
	return s
}

func (h lockHolder) marshal() []byte {
	return fmt.Appendf(nil, "pid=%d\ntime=%s\nbundle=%s\n", h.PID, h.Since.UTC().Format(time.RFC3339Nano), strings.ReplaceAll(h.Bundle, "\n", " "))
}

// parseLockHolder reads the lock file's key=value lines; unknown or broken
// lines are ignored (the file is only a hint for humans).
func parseLockHolder(b []byte) lockHolder {
	var h lockHolder
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "pid":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				h.PID = n
			}
		case "time":
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				h.Since = t
			}
		case "bundle":
			h.Bundle = v
		}
	}
	return h
}

// stagingLock is the exclusive flock on R/work/ccmirror/lock.
type stagingLock struct {
	f *os.File
}

// acquireLock takes the staging lock, polling for up to wait. flock locks
// belong to the open file and the kernel drops them when their holder dies,
// so a lock file left behind by a killed install never blocks: its stale
// holder line is reported and overwritten.
func acquireLock(ctx context.Context, path string, wait time.Duration, bundle string, log *slog.Logger) (*stagingLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("staging lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	waited := false
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("staging lock %s: %w", path, err)
		}
		holder := readHolder(path)
		if !waited {
			log.Info("waiting for the staging lock", "lock", path, "holder", holder.String(), "wait", wait)
			waited = true
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("staging lock %s is held by %s; wait for it to finish, then retry: %w", path, holder, ErrConflict)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("staging lock: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	prev := readHolder(path)
	if prev.PID != 0 {
		state := "is gone"
		if prev.PID != os.Getpid() && processAlive(prev.PID) {
			state = "did not clean up (its pid now belongs to another process)"
		}
		log.Warn("recovered a stale staging lock: the previous holder "+state+"; the kernel released its flock when it exited",
			"lock", path, "holder", prev.String())
	}
	h := lockHolder{PID: os.Getpid(), Since: time.Now(), Bundle: bundle}
	if err := writeHolder(f, h.marshal()); err != nil {
		f.Close()
		return nil, fmt.Errorf("staging lock %s: %w", path, err)
	}
	return &stagingLock{f: f}, nil
}

func readHolder(path string) lockHolder {
	b, err := os.ReadFile(path)
	if err != nil {
		return lockHolder{}
	}
	if len(b) > 64<<10 {
		b = b[:64<<10]
	}
	return parseLockHolder(b)
}

func writeHolder(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(b, 0)
	return err
}

// release empties the holder line (an empty lock file means "released
// cleanly") and drops the flock.
func (l *stagingLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lockPath is the staging lock of root.
func lockPath(root string) string { return filepath.Join(privateDir(root), "lock") }
