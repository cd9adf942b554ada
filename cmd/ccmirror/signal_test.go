package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// TestInterrupt: SIGINT and SIGTERM during a fetch exit 130 and 143 with one
// line saying what was interrupted and that a rerun resumes.
func TestInterrupt(t *testing.T) {
	bin := buildCCMirror(t, t.TempDir(), "ccmirror")
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	gh.SetStall("*", 0, time.Minute) // every download hangs until interrupted
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(bin, "--verbose", "fetch", "--unsigned", "--github-url", gh.URL(),
				"--cache", filepath.Join(dir, "cache"), "-o", filepath.Join(dir, "x.tar"), "gridengine@2.1.0")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(stderr)
			var last string
			signalled := false
			for sc.Scan() {
				last = sc.Text()
				if !signalled && strings.Contains(last, "performing request") && strings.Contains(last, gh.DownloadURL()) {
					cmd.Process.Signal(tc.sig) // a download is under way (and stalled)
					signalled = true
				}
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit: %v, want %d; last stderr line %q", err, tc.code, last)
			}
			if want := "ccmirror: interrupted: fetch gridengine@2.1.0 (rerun resumes from the cache)"; last != want {
				t.Errorf("last stderr line %q, want %q", last, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
				t.Error("an interrupted fetch left its bundle")
			}
		})
	}
}
