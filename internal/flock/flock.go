// Package flock is ccmirror's one advisory lock: an exclusive flock on a
// file that also holds a note naming its holder (pid, since when, what it
// is doing) for the messages of those who find it taken. The kernel drops
// a flock when its holder dies, so a crash never leaves a stale lock; the
// note of a dead holder is reported as such and overwritten.
package flock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

// maxNote bounds how much of a lock file is read as its holder note.
const maxNote = 64 << 10

// Holder is the note a lock holder writes into its lock file.
type Holder struct {
	PID   int
	Since time.Time
	What  string // what the holder is doing ("installing slurm-2.5.0.tar")
}

// String names the holder for a message.
func (h Holder) String() string {
	if h.PID == 0 {
		return "another process (it has not written its pid yet)"
	}
	s := "pid " + strconv.Itoa(h.PID)
	if !h.Since.IsZero() {
		s += " since " + h.Since.Format(time.RFC3339)
	}
	if h.What != "" {
		s += " " + h.What
	}
	return s
}

// Marshal renders the note as key=value lines.
func (h Holder) Marshal() []byte {
	return fmt.Appendf(nil, "pid=%d\ntime=%s\nwhat=%s\n", h.PID, h.Since.UTC().Format(time.RFC3339Nano), strings.ReplaceAll(h.What, "\n", " "))
}

// ParseHolder reads a note's key=value lines; unknown or broken lines are
// ignored (the note is only a hint for people).
func ParseHolder(b []byte) Holder {
	if len(b) > maxNote {
		b = b[:maxNote]
	}
	var h Holder
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxNote)
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
		case "what", "bundle":
			h.What = v
		}
	}
	return h
}

// HeldError is returned when the lock is held by someone else. It matches
// errclass.ErrConflict.
type HeldError struct {
	Path   string
	Holder Holder
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lock %s is held by %s", e.Path, e.Holder)
}

// Is makes a HeldError match errclass.ErrConflict.
func (e *HeldError) Is(target error) bool { return target == errclass.ErrConflict }

// Lock is a held lock.
type Lock struct {
	f      *os.File
	shared bool
	// Previous is the note left by an earlier holder that exited without
	// releasing (a crash); zero when the lock was released cleanly.
	Previous Holder
}

// Options tune Acquire.
type Options struct {
	// Wait is how long to wait for a held lock; 0 fails at once.
	Wait time.Duration
	// OnWait, when set, is called once with the holder when Acquire has to
	// wait, so the caller can say so.
	OnWait func(Holder)
	// Mode is the lock file's mode when Acquire creates it (0644 if zero).
	Mode os.FileMode
}

// Acquire takes the exclusive lock on path, creating the file if needed,
// waiting up to o.Wait while someone else holds it, and writes the note h.
// A lock still held after the wait is a *HeldError.
func Acquire(ctx context.Context, path string, h Holder, o Options) (*Lock, error) {
	f, err := take(ctx, path, syscall.LOCK_EX, o)
	if err != nil {
		return nil, err
	}
	l := &Lock{f: f, Previous: readNote(f)}
	if l.Previous.PID == os.Getpid() {
		l.Previous = Holder{}
	}
	if h.PID == 0 {
		h.PID = os.Getpid()
	}
	if h.Since.IsZero() {
		h.Since = time.Now()
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(h.Marshal(), 0)
	}
	return l, nil
}

// AcquireShared takes a shared lock on path, creating the file if needed:
// any number of shared holders at once, none while someone holds it
// exclusively (Acquire). It waits up to o.Wait; OnWait gets the exclusive
// holder's note. A shared holder writes no note, and Release leaves the
// note alone.
func AcquireShared(ctx context.Context, path string, o Options) (*Lock, error) {
	f, err := take(ctx, path, syscall.LOCK_SH, o)
	if err != nil {
		return nil, err
	}
	return &Lock{f: f, shared: true}, nil
}

// take opens path and flocks it with how (LOCK_EX or LOCK_SH), waiting as
// o says.
func take(ctx context.Context, path string, how int, o Options) (*os.File, error) {
	mode := o.Mode
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, mode)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("lock %s: not a regular file", path)
	}
	deadline := time.Now().Add(o.Wait)
	waited := false
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder := readNote(f)
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, &HeldError{Path: path, Holder: holder}
		}
		if !waited && o.OnWait != nil {
			o.OnWait(holder)
		}
		waited = true
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Release empties the note (an empty lock file means "released cleanly")
// and drops the lock. The file stays: removing it would race with a
// process that has just opened it.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	if !l.shared {
		_ = l.f.Truncate(0)
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// Held reports whether someone holds the lock on path, and the holder's
// note. It never creates the file and never blocks.
func Held(path string) (Holder, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return Holder{}, false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return Holder{}, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return readNote(f), true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return Holder{}, false
}

// ProcessAlive reports whether a process with this pid exists.
func ProcessAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func readNote(f *os.File) Holder {
	b := make([]byte, maxNote)
	n, _ := f.ReadAt(b, 0)
	return ParseHolder(b[:n])
}
