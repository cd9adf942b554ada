package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

func TestSecondHolderIsRefusedNamingTheFirst(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	ctx := context.Background()
	l, err := Acquire(ctx, p, Holder{What: "installing a.tar"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(ctx, p, Holder{What: "installing b.tar"}, Options{})
	var he *HeldError
	if !errors.As(err, &he) || !errors.Is(err, errclass.ErrConflict) {
		t.Fatalf("second Acquire = %v, want a HeldError matching ErrConflict", err)
	}
	if he.Holder.PID != os.Getpid() || !strings.Contains(err.Error(), "installing a.tar") {
		t.Errorf("error %q does not name the holder", err)
	}
	if h, held := Held(p); !held || h.What != "installing a.tar" {
		t.Errorf("Held = %+v, %v", h, held)
	}
	l.Release()
	if _, held := Held(p); held {
		t.Error("Held after Release")
	}
	l2, err := Acquire(ctx, p, Holder{}, Options{})
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if l2.Previous.PID != 0 {
		t.Errorf("clean release reported as stale: %+v", l2.Previous)
	}
	l2.Release()
}

func TestWaitCallsOnWaitOnceAndGetsTheLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	ctx := context.Background()
	l, err := Acquire(ctx, p, Holder{What: "first"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	done := make(chan error, 1)
	go func() {
		l2, err := Acquire(ctx, p, Holder{}, Options{Wait: time.Hour, OnWait: func(h Holder) {
			calls++
			if h.What == "first" {
				l.Release()
			}
		}})
		if err == nil {
			l2.Release()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("OnWait called %d times, want 1", calls)
	}
}

func TestStaleNoteIsReported(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	os.WriteFile(p, Holder{PID: 999999, Since: time.Unix(1, 0), What: "crashed"}.Marshal(), 0o644)
	l, err := Acquire(context.Background(), p, Holder{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.Previous.PID != 999999 || l.Previous.What != "crashed" {
		t.Errorf("Previous = %+v", l.Previous)
	}
}

func TestRefusesSymlinkAndCancels(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o644)
	link := filepath.Join(dir, "lock")
	os.Symlink(target, link)
	if _, err := Acquire(context.Background(), link, Holder{}, Options{}); err == nil {
		t.Error("Acquire followed a symlink")
	}
	p := filepath.Join(dir, "real")
	l, _ := Acquire(context.Background(), p, Holder{}, Options{})
	defer l.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Acquire(ctx, p, Holder{}, Options{Wait: time.Hour}); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire on a cancelled context = %v", err)
	}
}

func TestParseHolderIgnoresJunk(t *testing.T) {
	h := ParseHolder([]byte("pid=-3\nbogus\ntime=yesterday\nbundle=old.tar\n"))
	if h.PID != 0 || !h.Since.IsZero() || h.What != "old.tar" {
		t.Errorf("ParseHolder = %+v", h)
	}
}

func FuzzParseHolder(f *testing.F) {
	f.Add([]byte("pid=12\ntime=2026-01-02T03:04:05Z\nwhat=x\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := ParseHolder(b)
		if h.PID < 0 {
			t.Fatal("negative pid")
		}
		_ = h.String()
	})
}
