package syncjob

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"

	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// testKey writes an unencrypted ed25519 OpenSSH private key into dir and
// returns its path and the allowed_signers that trust it.
func testKey(t *testing.T, dir string) (string, *trust.AllowedSigners) {
	t.Helper()
	k := trusttest.NewKey(t, "mirror@example")
	b, err := os.ReadFile(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "signing_key") // mirror.yaml names it relatively
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, k.Allowed(t)
}

// fakeGitHub starts the fake GitHub for one test.
func fakeGitHub(t *testing.T) *githubtest.Server {
	t.Helper()
	s, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// world is one test's mirror job: a config file in dir, its output and
// cache folders, and the fake GitHub.
type world struct {
	t       *testing.T
	dir     string
	gh      *githubtest.Server
	key     string
	allowed *trust.AllowedSigners
	cache   string
	log     *syncBuffer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	key, as := testKey(t, dir)
	return &world{t: t, dir: dir, gh: fakeGitHub(t), key: key, allowed: as,
		cache: filepath.Join(dir, "cache"), log: &syncBuffer{}}
}

// config writes a config with the given projects block (YAML lines under
// "projects:") and extra top-level lines, and loads it.
func (w *world) config(projects string, extra ...string) *Config {
	w.t.Helper()
	var b strings.Builder
	b.WriteString("github_url: " + w.gh.URL() + "\n")
	b.WriteString("sign_key: signing_key\n")
	b.WriteString("output: out\n")
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	b.WriteString("projects:\n" + projects)
	path := filepath.Join(w.dir, "mirror.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		w.t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		w.t.Fatalf("LoadConfig: %v\n%s", err, b.String())
	}
	return c
}

func (w *world) out() string { return filepath.Join(w.dir, "out") }

// run does one sync pass.
func (w *world) run(ctx context.Context, c *Config) (*Summary, error) {
	log := slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return Run(ctx, c, Options{CacheDir: w.cache, Log: log})
}

// mustRun does one sync pass that must succeed.
func (w *world) mustRun(c *Config) *Summary {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	s, err := w.run(ctx, c)
	if err != nil {
		w.t.Fatalf("sync: %v\nlog:\n%s", err, w.log.String())
	}
	return s
}

// fileState is a file's size, mtime and content hash.
type fileState struct {
	size  int64
	mtime time.Time
	data  string
}

// snapshot records every file of the output folder.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fileState{size: st.Size(), mtime: st.ModTime(), data: string(b)}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func files(bs []Bundle) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.File)
	}
	return out
}
