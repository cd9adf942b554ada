package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// fetchChildEnv carries a fetchChild's configuration (JSON) to a re-executed
// test binary, which then runs one Fetch and exits with its exit code.
const fetchChildEnv = "CCMIRROR_TEST_FETCH_CHILD"

func TestMain(m *testing.M) {
	if c := os.Getenv(fetchChildEnv); c != "" {
		os.Exit(runFetchChild(c))
	}
	code := m.Run()
	if childBin.path != "" {
		os.RemoveAll(filepath.Dir(childBin.path))
	}
	os.Exit(code)
}

// fetchChild is one Fetch run in a process of its own, so its peak memory
// can be measured apart from the fake server and the test.
type fetchChild struct {
	GitHubURL        string
	CacheDir         string
	Out              string
	Refs             []string
	RetryMax         int
	MaxDownloadBytes int64
	MaxAPIBytes      int64
}

// runFetchChild runs the Fetch c describes and returns the exit code the
// CLI gives its error (SPEC: Exit codes).
func runFetchChild(c string) int {
	var fc fetchChild
	if err := json.Unmarshal([]byte(c), &fc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 100
	}
	var refs []Ref
	for _, s := range fc.Refs {
		r, err := ParseRef(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 100
		}
		refs = append(refs, r)
	}
	f, err := NewFetcher(Options{
		GitHubURL:        fc.GitHubURL,
		CacheDir:         fc.CacheDir,
		RetryMax:         fc.RetryMax,
		RetryWaitMin:     time.Millisecond,
		RetryWaitMax:     10 * time.Millisecond,
		IdleTimeout:      10 * time.Second,
		MaxDownloadBytes: fc.MaxDownloadBytes,
		MaxAPIBytes:      fc.MaxAPIBytes,
		Log:              slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err == nil {
		_, err = f.Fetch(context.Background(), refs, fc.Out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	// The peak of this program alone: ru_maxrss would also count the
	// parent's memory that the child shared before exec (vfork).
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				fmt.Fprintf(os.Stderr, "%s%s\n", hwmPrefix, strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			}
		}
	}
	return cliExitCode(err)
}

// hwmPrefix starts the line on which a fetchChild reports its peak
// resident memory (VmHWM) in KiB.
const hwmPrefix = "fetch child VmHWM KiB: "

// cliExitCode is the exit code cmd/ccmirror gives err (SPEC: Exit codes).
func cliExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errclass.ErrUsage):
		return 2
	case errors.Is(err, errclass.ErrVerify):
		return 4
	case errors.Is(err, errclass.ErrConflict):
		return 5
	case errors.Is(err, errclass.ErrUpstream):
		return 3
	}
	return 1
}

var childBin struct {
	once sync.Once
	path string
	err  error
}

// fetchChildBinary is the test binary to run a fetchChild in: this one, or
// under the race detector (which multiplies memory) a copy of this
// package's tests built without it.
func fetchChildBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return os.Args[0]
	}
	childBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "ccmirror-memtest-")
		if err != nil {
			childBin.err = err
			return
		}
		childBin.path = filepath.Join(dir, "mirror.test")
		out, err := exec.Command("go", "test", "-c", "-o", childBin.path, ".").CombinedOutput()
		if err != nil {
			childBin.err = fmt.Errorf("go test -c without -race: %v: %s", err, out)
		}
	})
	if childBin.err != nil {
		t.Fatal(childBin.err)
	}
	return childBin.path
}

// startFetchChild runs fc in a re-executed test binary and returns its exit
// code, its peak resident memory in bytes (VmHWM, as the child saw it at
// its end), ru_maxrss (an upper bound: it includes what the child shared
// with this process before exec) and what it wrote on stderr.
func startFetchChild(t *testing.T, fc fetchChild) (code int, hwm, maxRSS int64, stderr string) {
	t.Helper()
	b, _ := json.Marshal(fc)
	cmd := exec.Command(fetchChildBinary(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), fetchChildEnv+"="+string(b))
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("child fetch: %v", err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage for the child")
	}
	hwm = -1
	for _, l := range strings.Split(errBuf.String(), "\n") {
		if v, ok := strings.CutPrefix(l, hwmPrefix); ok {
			hwm, _ = strconv.ParseInt(v, 10, 64)
			hwm <<= 10
		}
	}
	if hwm < 0 {
		t.Fatalf("the child did not report its peak memory: %s", tail(errBuf.String(), 2000))
	}
	return cmd.ProcessState.ExitCode(), hwm, ru.Maxrss << 10, errBuf.String() // Linux: KiB
}

// Memory stays flat whatever GitHub sends: every hostile answer of issue
// 14 ends a fetch with exit 3, under 64 MiB of peak memory, with nothing
// written.
func TestFetchMemoryFlat(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ru_maxrss is in KiB on Linux only")
	}
	const (
		rssLimit  = 64 << 20
		assetSize = 96 << 20 // bigger than the limit: buffering it would show
	)
	tests := []struct {
		name    string
		hostile githubtest.Hostile
		child   fetchChild
		want    string // in the error
		apiReqs int    // requests of one API path allowed (0: not counted)
		served  int64  // download bytes the fake must have sent at least
	}{
		{
			name:    "endless archive body",
			hostile: githubtest.Hostile{Endless: "*cyclecloud-gridengine-2.1.0*"},
			// Both archive URLs (the archive and the API tarball it falls
			// back to); twice the memory limit: a body kept in memory
			// would show.
			child:  fetchChild{MaxDownloadBytes: 2 * rssLimit},
			want:   "more than the 134217728 bytes allowed",
			served: 2 * rssLimit,
		},
		{
			name:    "asset always half of its content length",
			hostile: githubtest.Hostile{ShortBodies: "sge-2011.11-64.tgz"},
			child:   fetchChild{RetryMax: 3},
			want:    "interrupted 4 times",
			served:  assetSize / 2,
		},
		{
			name:    "1 GiB JSON answer",
			hostile: githubtest.Hostile{HugeAPI: 1 << 30},
			want:    "bytes allowed for an API answer",
		},
		{
			name:    "Retry-After past time.Duration",
			hostile: githubtest.Hostile{RateHeaders: map[string]string{"Retry-After": "9227000000"}},
			want:    "rate limit exhausted until",
			apiReqs: 1,
		},
		{
			name:    "X-RateLimit-Reset far away",
			hostile: githubtest.Hostile{RateHeaders: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "99999999999999999"}},
			want:    "rate limit exhausted until",
			apiReqs: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t, githubtest.Options{SizeFor: func(repo, tag, asset string) int64 {
				if asset == "sge-2011.11-64.tgz" {
					return assetSize
				}
				return -1
			}})
			s.SetHostile(tc.hostile)
			outDir := t.TempDir()
			fc := tc.child
			fc.GitHubURL, fc.CacheDir, fc.Out = s.URL(), t.TempDir(), filepath.Join(outDir, "b.tar")
			fc.Refs = []string{"gridengine@2.1.0"}
			code, rss, maxRSS, stderr := startFetchChild(t, fc)
			t.Logf("exit %d, peak RSS %.1f MiB (ru_maxrss %.1f MiB)", code, float64(rss)/(1<<20), float64(maxRSS)/(1<<20))
			if code != 3 {
				t.Errorf("exit %d, want 3; stderr:\n%s", code, tail(stderr, 2000))
			}
			if rss >= rssLimit {
				t.Errorf("peak RSS %d bytes (%.1f MiB), want under 64 MiB", rss, float64(rss)/(1<<20))
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, tail(stderr, 2000))
			}
			if tc.apiReqs > 0 {
				// Per path: a tag's release and commit are asked for at
				// once; what must not happen is asking one of them again.
				perPath := map[string]int{}
				for _, r := range s.Requests() {
					if r.Host == githubtest.HostAPI {
						perPath[r.Path]++
					}
				}
				for path, n := range perPath {
					if n > tc.apiReqs {
						t.Errorf("%s asked %d times, want at most %d", path, n, tc.apiReqs)
					}
				}
			}
			var served int64
			for _, r := range s.Requests() {
				if r.Host == githubtest.HostDownload {
					served += r.Bytes
				}
			}
			if served < tc.served {
				t.Errorf("the fake sent %d bytes, want at least %d: the hostile input was not downloaded", served, tc.served)
			}
			if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
				t.Errorf("left in the output folder: %v", ents)
			}
		})
	}
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
