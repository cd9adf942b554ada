package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// Small hostile servers on loopback: every download and API answer ends,
// with one clear error, whatever the other end does.

// hostile starts a loopback server that counts its requests.
func hostile(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

// hostileFetcher is a Fetcher against srv with small limits, and the
// downloader a Fetch would use.
func hostileFetcher(t *testing.T, srv *httptest.Server, edit func(*Options)) (*Fetcher, *downloader) {
	t.Helper()
	o := Options{
		GitHubURL:    srv.URL + "/api/v3/",
		CacheDir:     t.TempDir(),
		RetryMax:     3,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
		IdleTimeout:  5 * time.Second,
		Log:          slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if edit != nil {
		edit(&o)
	}
	f := newFetcher(t, o)
	return f, &downloader{client: f.client, policy: f.policy, ua: f.ua, progress: func(int64) {}}
}

// wantUpstream fails unless err is one line matching ErrUpstream and naming
// every want.
func wantUpstream(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, ErrUpstream) {
		t.Fatalf("err = %v, want ErrUpstream (exit 3)", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

func TestHostileDownloads(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	tests := []struct {
		name    string
		path    string
		handler func(w http.ResponseWriter, r *http.Request)
		size    int64 // announced size, -1 for an archive
		edit    func(*Options)
		want    []string
		maxReqs int64 // requests the download may make in all
	}{
		{
			name: "endless archive body",
			path: "/endless",
			handler: func(w http.ResponseWriter, r *http.Request) {
				for {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			size: -1,
			edit: func(o *Options) { o.MaxDownloadBytes = 1 << 20 },
			want: []string{"/endless", "more than the 1048576 bytes allowed"},
			// The limit fails at once: no retry.
			maxReqs: 1,
		},
		{
			name: "asset longer than announced",
			path: "/long",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write(bytes.Repeat([]byte("y"), 9000))
			},
			size:    4096,
			want:    []string{"/long", "more than the 4096 bytes announced"},
			maxReqs: 1,
		},
		{
			name: "always half of the announced length, no ranges",
			path: "/half",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "8192")
				w.Write(bytes.Repeat([]byte("z"), 4096))
			},
			size:    8192,
			want:    []string{"/half", "interrupted 4 times"},
			maxReqs: 4, // RetryMax 3: four attempts in all
		},
		{
			name: "always half of what is left, with ranges",
			path: "/zeno",
			handler: func(w http.ResponseWriter, r *http.Request) {
				const size = 1 << 20
				start := int64(0)
				if v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
					start, _ = strconv.ParseInt(strings.TrimSuffix(v, "-"), 10, 64)
				}
				w.Header().Set("Accept-Ranges", "bytes")
				w.Header().Set("Content-Length", strconv.FormatInt(size-start, 10))
				if start > 0 {
					w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, size-1, size))
					w.WriteHeader(http.StatusPartialContent)
				}
				w.Write(bytes.Repeat([]byte("r"), int((size-start)/2)))
			},
			size: 1 << 20,
			want: []string{"/zeno", "interrupted 4 times"},
			// Progress on every attempt no longer renews the budget.
			maxReqs: 4,
		},
		{
			name: "a trickle that never ends in time",
			path: "/trickle",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000000")
				for i := 0; i < 1000; i++ {
					if _, err := w.Write([]byte("t")); err != nil {
						return
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			},
			size:    1000000,
			edit:    func(o *Options) { o.DownloadTimeout = 300 * time.Millisecond },
			want:    []string{"/trickle", "not complete after 300ms"},
			maxReqs: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, reqs := hostile(t, tc.handler)
			f, d := hostileFetcher(t, srv, tc.edit)
			_, st, err := f.cache.fetch(context.Background(), d, "k "+tc.name, dlRequest{label: "blob x", url: srv.URL + tc.path, size: tc.size})
			wantUpstream(t, err, tc.want...)
			if n := reqs.Load(); n > tc.maxReqs {
				t.Errorf("%d requests, want at most %d", n, tc.maxReqs)
			}
			if tc.size < 0 && st.net > f.o.MaxDownloadBytes+int64(len(chunk)) {
				t.Errorf("received %d bytes past the %d limit", st.net, f.o.MaxDownloadBytes)
			}
			// Nothing over a limit is kept to resume from.
			ents, _ := os.ReadDir(filepath.Join(f.o.CacheDir, "objects"))
			if len(ents) != 0 {
				t.Errorf("objects stored after a failed download: %v", ents)
			}
		})
	}
}

// A Retry-After past the wait ccmirror accepts (and past what
// time.Duration holds as seconds) is one request and one clear error.
func TestHostileRateLimitHeaders(t *testing.T) {
	for _, h := range []map[string]string{
		{"Retry-After": "9227000000"},
		{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "99999999999999999"},
	} {
		srv, reqs := hostile(t, func(w http.ResponseWriter, r *http.Request) {
			for k, v := range h {
				w.Header().Set(k, v)
			}
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"message":"API rate limit exceeded"}`))
		})
		f, _ := hostileFetcher(t, srv, nil)
		_, err := f.Releases(context.Background(), "Azure", "cyclecloud-slurm")
		var rl *RateLimitError
		if !errors.As(err, &rl) || !rl.Reset.After(time.Now().Add(300*24*time.Hour)) {
			t.Errorf("%v: err = %v, want a RateLimitError with a reset far away", h, err)
		}
		wantUpstream(t, err, "rate limit exhausted until")
		if n := reqs.Load(); n != 1 {
			t.Errorf("%v: %d requests, want 1", h, n)
		}
	}
}

// A huge API answer fails at the limit instead of filling memory.
func TestHostileHugeJSON(t *testing.T) {
	srv, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[{"tag_name":"1.0.0","body":"`))
		pad := bytes.Repeat([]byte("a"), 64<<10)
		for i := 0; i < 1<<14; i++ { // up to 1 GiB
			if _, err := w.Write(pad); err != nil {
				return
			}
		}
		w.Write([]byte(`"}]`))
	})
	f, _ := hostileFetcher(t, srv, func(o *Options) { o.MaxAPIBytes = 1 << 20 })
	_, err := f.Releases(context.Background(), "Azure", "cyclecloud-slurm")
	wantUpstream(t, err, "/repos/Azure/cyclecloud-slurm/releases", "1048576 bytes allowed for an API answer")
}

// A full cache filesystem is a local fault: exit 1 naming the path and
// ENOSPC, and no retry.
func TestCacheDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	body := bytes.Repeat([]byte("f"), 1<<20)
	srv, reqs := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	f, d := hostileFetcher(t, srv, func(o *Options) { o.CacheDir = filepath.Join(dir, "cache") })
	_, _, err := f.cache.fetch(context.Background(), d, "big", dlRequest{label: "blob big", url: srv.URL + "/big", size: int64(len(body))})
	if err == nil || errors.Is(err, ErrUpstream) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want a local ENOSPC fault (not ErrUpstream)", err)
	}
	if !strings.Contains(err.Error(), "ENOSPC") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name ENOSPC and the cache path", err)
	}
	if n := reqs.Load(); n != 1 {
		t.Errorf("%d requests: a full disk was retried", n)
	}
}

// Temporary bundle files that killed fetches left beside the output are
// swept by the next fetch to it, and it says so; one still being written
// (locked) stays.
func TestFetchSweepsLeftovers(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	var logs logBuf
	o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	var left []string
	for i := 0; i < 3; i++ {
		f, err := atomicfile.Create(out, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(bytes.Repeat([]byte("l"), 1000))
		f.File.Close() // as a kill leaves it: no lock, no rename
		left = append(left, f.Name())
	}
	old := filepath.Join(dir, "b.tar.partial-123456")
	os.WriteFile(old, []byte("from an older version"), 0o644)
	left = append(left, old)
	// What a killed run leaves in the cache: an object being written, a
	// private partial download, an atomic write of an index entry. They are
	// minutes old, not days: nobody holds them, so they go now.
	for _, name := range []string{"tmp/put-1234", "partial/ab12.5678.tmp", "index/ab/.ab12.json.tmp-42"} {
		p := filepath.Join(o.CacheDir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("left by a kill"), 0o644)
		left = append(left, p)
	}
	inUse, err := os.Create(filepath.Join(o.CacheDir, "tmp", "put-inuse"))
	if err != nil {
		t.Fatal(err)
	}
	defer inUse.Close()
	atomicfile.TryLock(inUse)
	busy, err := atomicfile.Create(out, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Abort()
	if !atomicfile.TryLock(busy.File) {
		t.Fatal("cannot lock")
	}
	if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out); err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		if _, err := os.Stat(l); err == nil {
			t.Errorf("%s not swept", l)
		}
		if !strings.Contains(logs.String(), filepath.Base(l)) {
			t.Errorf("sweeping %s not logged", filepath.Base(l))
		}
	}
	if _, err := os.Stat(busy.Name()); err != nil {
		t.Errorf("the temporary file of a fetch under way was swept: %v", err)
	}
	if _, err := os.Stat(inUse.Name()); err != nil {
		t.Errorf("the cache object another run is writing was swept: %v", err)
	}
}

// A cache object whose bytes changed on disk, size and mtime put back, is
// never signed into a bundle: the fetch finds it, drops it, downloads it
// again and writes a bundle that verifies; the cache is healed for the
// next run.
func TestFetchHealsChangedCacheObject(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, filepath.Join(t.TempDir(), "1.tar")); err != nil {
		t.Fatal(err)
	}
	a := assetSum(t, s, "cyclecloud-gridengine", "2.1.0", "sge-2011.11-64.tgz")
	obj := filepath.Join(o.CacheDir, "objects", a[:2], a)
	st, err := os.Stat(obj)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(obj)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(obj, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(obj, st.ModTime(), st.ModTime())
	for run := 0; run < 2; run++ {
		s.ResetCounters()
		// Another set of projects: no cached bundle stands in.
		out := filepath.Join(t.TempDir(), "2.tar")
		res, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0"), mustRef(t, "hpcpack@2.1.2")}, out)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		readBundle(t, out)
		healed := false
		for _, w := range res.Warnings {
			healed = healed || strings.Contains(w, "sge-2011.11-64.tgz")
		}
		if run == 0 && !healed {
			t.Errorf("warnings %q do not name the changed blob", res.Warnings)
		}
		if run == 1 && healed {
			t.Errorf("the cache did not heal: %q", res.Warnings)
		}
	}
}

func assetSum(t *testing.T, s *githubtest.Server, repo, tag, name string) string {
	t.Helper()
	as, err := s.Assets(repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Name == name {
			return a.SHA256
		}
	}
	t.Fatalf("no asset %s", name)
	return ""
}

// A full output folder is a local fault too: exit 1 naming the bundle and
// ENOSPC, nothing left behind.
func TestOutputDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	s := newFake(t, githubtest.Options{BlobSize: 64 << 10})
	out := filepath.Join(dir, "b.tar")
	_, err := newFetcher(t, testOptions(t, s)).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out)
	if err == nil || errors.Is(err, ErrUpstream) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want a local ENOSPC fault (not ErrUpstream)", err)
	}
	if !strings.Contains(err.Error(), "ENOSPC") || !strings.Contains(err.Error(), out) {
		t.Errorf("error %q does not name ENOSPC and %s", err, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in the output folder: %v", ents)
	}
}
