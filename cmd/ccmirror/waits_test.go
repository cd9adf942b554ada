package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/internal/flock"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// TestRetryWaitIsVisible: a fetch waiting more than 2 s for a retry (here
// GitHub's rate limit) prints one line on stderr naming the request, the
// attempt and when the next try is.
func TestRetryWaitIsVisible(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	gh.SetRateLimit(0, time.Now().Add(5*time.Second)) // the wait is over 2 s unless the fetch takes 3 s to start
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", filepath.Join(dir, "cache"),
		"-o", filepath.Join(dir, "b.tar"), "gridengine@2.1.0")
	if code != exitOK {
		t.Fatalf("fetch: exit %d: %s", code, stderr)
	}
	var waits []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "next try in") {
			waits = append(waits, l)
		}
	}
	if len(waits) == 0 || !strings.HasPrefix(waits[0], "ccmirror: GET ") || !strings.Contains(waits[0], "status: 403") ||
		!strings.Contains(waits[0], "(attempt 1 of ") {
		t.Errorf("stderr %q; want a line naming the request, its attempt and the next try", stderr)
	}
}

// TestLockWaitIsVisible: an install waiting for another's staging lock
// says so on stderr, naming the holder's pid.
func TestLockWaitIsVisible(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: install checks the state folder is root's")
	}
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	dir := t.TempDir()
	b := filepath.Join(dir, "b.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", filepath.Join(dir, "cache"), "-o", b, "gridengine@2.1.0")
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	// A first install creates the state folder; then "another install"
	// (this test) holds its lock for a moment.
	mustRunCLI(t, "install", "--insecure-skip-signature", "--root", root, "--state-dir", state, "--owner", "0:0", b)
	l, err := flock.Acquire(context.Background(), filepath.Join(state, "lock"), flock.Holder{What: "installing other.tar"}, flock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(time.Second)
		l.Release()
	}()
	code, _, stderr := runCLI(t, "install", "--insecure-skip-signature", "--root", root, "--state-dir", state, "--owner", "0:0", "--force", b)
	if code != exitOK {
		t.Fatalf("second install: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "waiting up to") || !strings.Contains(stderr, "staging lock") ||
		!strings.Contains(stderr, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(stderr, "installing other.tar") {
		t.Errorf("stderr %q; want one line saying it waits for the staging lock held by pid %d", stderr, os.Getpid())
	}
}
