package main

import (
	"bufio"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// TestFetchKillLoop kills fetches with SIGKILL at many points (during the
// downloads into the cache, while the bundle is written beside the output)
// and checks that the next fetch leaves nothing of them behind: no
// temporary file beside the output, none in the cache's tmp/ or among its
// partial downloads, and --verbose names every file it swept.
func TestFetchKillLoop(t *testing.T) {
	bin := buildCCMirror(t, t.TempDir(), "ccmirror")
	gh, err := githubtest.NewServer(githubtest.Options{BlobSize: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	gh.SetBandwidth(8<<20, 0)
	dir := t.TempDir()
	out := filepath.Join(dir, "out", "b.tar")
	cache := filepath.Join(dir, "cache")
	os.MkdirAll(filepath.Dir(out), 0o755)
	args := []string{"--verbose", "fetch", "--unsigned", "--github-url", gh.URL(), "--cache", cache, "-o", out, "slurm@3.0.12"}

	// temps lists what a killed fetch may leave: temporary names beside
	// the output, anything under the cache's tmp/, private partial
	// downloads and atomic-write temporaries in the cache.
	temps := func() map[string]bool {
		left := map[string]bool{}
		ents, _ := os.ReadDir(filepath.Dir(out))
		for _, e := range ents {
			if e.Name() != "b.tar" {
				left[filepath.Join(filepath.Dir(out), e.Name())] = true
			}
		}
		filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(cache, p)
			if strings.HasPrefix(rel, "tmp/") || strings.HasSuffix(p, ".tmp") || strings.Contains(d.Name(), ".tmp-") {
				left[p] = true
			}
			return nil
		})
		return left
	}

	killedWhileWriting, swept := 0, 0
	for round := 0; round < 12; round++ {
		// Every round downloads and writes again: the cache keeps its
		// partial downloads and temporaries, not its objects or bundles.
		for _, sub := range []string{"objects", "index", "bundles"} {
			os.RemoveAll(filepath.Join(cache, sub))
		}
		before := temps()
		var log strings.Builder
		cmd := exec.Command(bin, args...)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Even rounds die at their (round/2+1)-th download request; odd
		// rounds as soon as the bundle's temporary file exists.
		killed := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			n := 0
			done := false
			for sc.Scan() {
				if done {
					log.WriteString(sc.Text() + "\n")
					continue
				}
				line := sc.Text()
				log.WriteString(line + "\n")
				if round%2 == 0 && strings.Contains(line, "performing request") && strings.Contains(line, gh.DownloadURL()) {
					if n++; n > round/2 {
						cmd.Process.Signal(syscall.SIGKILL)
						done = true
					}
				}
			}
			killed <- done
		}()
		exited := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			if round%2 == 0 {
				return
			}
			// The bundle is written after the last download: watch for it.
			for {
				select {
				case <-exited:
					return
				case <-time.After(time.Millisecond):
				}
				if hasTemp(filepath.Dir(out)) {
					cmd.Process.Signal(syscall.SIGKILL)
					killedWhileWriting++
					return
				}
			}
		}()
		<-killed
		cmd.Wait()
		close(exited)
		<-watched
		now := temps()
		for p := range before {
			if !now[p] {
				swept++
				if !strings.Contains(log.String(), p) {
					t.Errorf("round %d swept %s without naming it (--verbose)", round, p)
				}
			}
		}
		os.Remove(out) // a fetch that finished before its kill: write it again
	}
	left := temps()
	cmd := exec.Command(bin, args...)
	logs, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch after the kills: %v\n%s", err, logs)
	}
	if after := temps(); len(after) > 0 {
		t.Errorf("after a completed fetch these temporary files remain: %v", keys(after))
	}
	for p := range left {
		if !strings.Contains(string(logs), p) {
			t.Errorf("--verbose did not name the swept %s", p)
		}
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("no bundle after the last fetch: %v", err)
	}
	if swept += len(left); swept == 0 {
		t.Fatal("twelve killed fetches left no temporary file: the kills came too late to test the sweep")
	}
	t.Logf("%d temporary files swept (%d rounds killed while writing the bundle)", swept, killedWhileWriting)
}

// hasTemp says whether dir holds a temporary bundle name.
func hasTemp(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "b.tar" {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}
