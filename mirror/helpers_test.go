package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// newFake starts a fake GitHub for one test.
func newFake(t *testing.T, o githubtest.Options) *githubtest.Server {
	t.Helper()
	s, err := githubtest.NewServer(o)
	if err != nil {
		t.Fatalf("fake GitHub: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// testOptions are fast policies against the fake: short backoff, short
// stall detection, a fresh cache.
func testOptions(t *testing.T, s *githubtest.Server) Options {
	return Options{
		GitHubURL:    s.URL(),
		CacheDir:     t.TempDir(),
		RetryMax:     10,
		RetryWaitMin: 2 * time.Millisecond,
		RetryWaitMax: 40 * time.Millisecond,
		IdleTimeout:  5 * time.Second,
		Log:          slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

func newFetcher(t *testing.T, o Options) *Fetcher {
	t.Helper()
	f, err := NewFetcher(o)
	if err != nil {
		t.Fatalf("NewFetcher: %v", err)
	}
	return f
}

// tWriter sends log lines to t.Log, shown for failed tests and -v.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func mustRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readBundle reads a bundle back with full verification: every hash and
// size checked, every payload read to the end.
func readBundle(t *testing.T, path string) (*manifest.Reader, map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := manifest.NewReader(f)
	if err != nil {
		t.Fatalf("read bundle %s: %v", path, err)
	}
	files := map[string][]byte{}
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read bundle %s: %v", path, err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("read bundle %s: %s: %v", path, p.File.Path, err)
		}
		files[p.File.Path] = b
	}
	return r, files
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// assertNoLeftovers fails when dir holds a bundle temp file, or a file
// named like the bundle.
func assertNoLeftovers(t *testing.T, dir, out string) {
	t.Helper()
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bundle %s exists after a failed fetch (stat: %v)", out, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".partial") || strings.HasPrefix(e.Name(), atomicfile.TempPrefix(out)) {
			t.Errorf("leftover temporary file %s", e.Name())
		}
	}
}

// fixtureSubset is the fake's fixtures restricted to some repo/tag folders,
// with optional project.ini edits.
func fixtureSubset(t *testing.T, keep map[string][]string, editINI func(repo, tag string, ini []byte) []byte) fs.FS {
	t.Helper()
	src := os.DirFS(filepath.Join("githubtest", "fixtures"))
	m := fstest.MapFS{}
	for repo, tags := range keep {
		for _, tag := range tags {
			for _, name := range []string{"commit", "project.ini", "tree.tsv"} {
				p := "projects/" + repo + "/" + tag + "/" + name
				b, err := fs.ReadFile(src, p)
				if err != nil {
					t.Fatal(err)
				}
				if name == "project.ini" && editINI != nil {
					b = editINI(repo, tag, b)
				}
				m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
			}
		}
	}
	return m
}
