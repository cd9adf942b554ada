package mirror

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// logBuf collects log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rewrite writes the bundle at path again with manifest.WriteBundle from
// what it holds: an in-place bundle must be those bytes exactly.
func rewrite(t *testing.T, path string, signer manifest.Signer) []byte {
	t.Helper()
	r, files := readBundle(t, path)
	m := r.Manifest()
	var entries []manifest.Entry
	for _, f := range m.Files() {
		b := files[f.Path]
		entries = append(entries, manifest.Entry{Path: f.Path, Size: f.Size, SHA256: f.SHA256, Mode: 0o644,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
	}
	var sig manifest.Signer
	if signer != nil {
		sig = fixedSigner(r.Signature())
	}
	var buf bytes.Buffer
	if err := manifest.WriteBundle(context.Background(), &buf, m, entries, sig); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type fixedSigner []byte

func (s fixedSigner) Sign([]byte) ([]byte, error) { return s, nil }

func TestFetchInPlace(t *testing.T) {
	signer := trusttest.NewKey(t, "mirror@example.com").Signer
	const asset = "cyclecloud-gridengine-pkg-2.1.0.tar.gz"
	for _, tc := range []struct {
		name     string
		signed   bool
		truncate bool
		warm     bool // a second fetch after the cache objects were rewritten
	}{
		{name: "unsigned"},
		{name: "signed", signed: true},
		{name: "resumed", truncate: true},
		{name: "cache hits", warm: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t, githubtest.Options{BlobSize: 70000})
			if tc.truncate {
				s.TruncateOnce(asset, 3000)
			}
			o := testOptions(t, s)
			var logs logBuf
			o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var sg manifest.Signer
			if tc.signed {
				o.Signer, sg = signer, signer
			}
			dir := t.TempDir()
			out := filepath.Join(dir, "b.tar")
			if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out); err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if tc.warm {
				// Rewritten objects and no cached bundle: copied into
				// place, hashed again.
				os.RemoveAll(filepath.Join(o.CacheDir, "bundles"))
				filepath.WalkDir(filepath.Join(o.CacheDir, "objects"), func(p string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						os.WriteFile(p+".x", nil, 0o644)
						b, _ := os.ReadFile(p)
						os.WriteFile(p, b, 0o644)
						os.Remove(p + ".x")
					}
					return nil
				})
				os.Remove(out)
				logs = logBuf{}
				if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out); err != nil {
					t.Fatalf("warm Fetch: %v", err)
				}
			}
			l := logs.String()
			if !strings.Contains(l, "bundle laid out in place") || strings.Contains(l, "in-place bundle abandoned") {
				t.Fatalf("bundle not written in place:\n%s", l)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if want := rewrite(t, out, sg); !bytes.Equal(got, want) {
				t.Fatalf("in-place bundle (%d bytes) differs from WriteBundle's (%d bytes)", len(got), len(want))
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Fatalf("output folder holds %d files, want the bundle only", len(ents))
			}
		})
	}
}
