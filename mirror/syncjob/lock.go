package syncjob

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

// jobLock is the exclusive flock a run holds on <output>/.ccmirror-sync.lock.
type jobLock struct{ f *os.File }

// lockOutput takes the job lock of the output folder without waiting: an
// overlapping run (a slow run still going when the timer fires again)
// fails at once with an error matching staging.ErrConflict. The lock file
// names its holder for the message; the kernel drops the lock when the
// holder dies, so a crash never leaves a stale lock.
func lockOutput(dir string, now time.Time) (*jobLock, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sync: lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		holder := describeHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("sync: another ccmirror sync is running on %s (%s; lock %s): %w", dir, holder, path, errclass.ErrConflict)
		}
		return nil, fmt.Errorf("sync: lock %s: %w", path, err)
	}
	// Best effort: the holder note is for humans only.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(fmt.Appendf(nil, "pid=%d\ntime=%s\n", os.Getpid(), now.UTC().Format(time.RFC3339)), 0)
	}
	return &jobLock{f: f}, nil
}

// describeHolder reads the holder note of a held lock file.
func describeHolder(f *os.File) string {
	var b [512]byte
	n, _ := f.ReadAt(b[:], 0)
	var pid, since string
	sc := bufio.NewScanner(bytes.NewReader(b[:n]))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "pid":
			if _, err := strconv.Atoi(v); err == nil {
				pid = v
			}
		case "time":
			if _, err := time.Parse(time.RFC3339, v); err == nil {
				since = v
			}
		}
	}
	if pid == "" {
		return "holder unknown"
	}
	if since == "" {
		return "pid " + pid
	}
	return "pid " + pid + " since " + since
}

// unlock releases the lock; the file stays (removing it would race with a
// run that just opened it).
func (l *jobLock) unlock() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}
