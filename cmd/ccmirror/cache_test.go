package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// diskBytes is what the files under dir take, each hard-linked file once,
// as du counts them.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		st, err := de.Info()
		if err != nil {
			return err
		}
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			if seen[s.Ino] {
				return nil
			}
			seen[s.Ino] = true
		}
		n += st.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCachePrune: `cache` shows where the cache is and what it holds by
// kind; `cache prune --max-size 1M` leaves it under 1.5 MB and the next
// fetch still works (downloading again what was pruned).
func TestCachePrune(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{BlobSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	fetch := func(ref, out string) {
		t.Helper()
		mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", cache, "-o", filepath.Join(dir, out), ref)
	}
	fetch("gridengine@2.1.0", "a.tar")
	fetch("pbspro@2.0.25", "b.tar")
	fetch("slurm@3.0.12", "c.tar")
	before := diskBytes(t, cache)
	if before < 2<<20 {
		t.Fatalf("the cache holds %d bytes after three fetches; the test needs more than 2 MiB", before)
	}

	text := mustRunCLI(t, "cache", "--cache", cache)
	for _, want := range []string{"cache " + cache, "objects", "bundles", "partial", "tmp", "index"} {
		if !strings.Contains(text, want) {
			t.Errorf("cache output lacks %q:\n%s", want, text)
		}
	}
	var u struct {
		Dir   string `json:"dir"`
		Bytes int64  `json:"bytes"`
		Kinds []struct {
			Name  string `json:"name"`
			Files int    `json:"files"`
			Bytes int64  `json:"bytes"`
		} `json:"kinds"`
	}
	if err := json.Unmarshal([]byte(mustRunCLI(t, "cache", "--cache", cache, "--json")), &u); err != nil {
		t.Fatal(err)
	}
	if u.Dir != cache || u.Bytes != before || len(u.Kinds) != 5 || u.Kinds[0].Name != "objects" || u.Kinds[0].Files == 0 {
		t.Errorf("cache --json = %+v; want dir %s, %d bytes, objects first", u, cache, before)
	}

	out := mustRunCLI(t, "cache", "prune", "--max-size", "1M", "--cache", cache)
	if !strings.Contains(out, "pruned ") {
		t.Errorf("cache prune said %q", out)
	}
	if after := diskBytes(t, cache); after > 1536<<10 {
		t.Errorf("after cache prune --max-size 1M the cache holds %d bytes; want at most 1.5 MiB", after)
	}
	for _, b := range []string{"a.tar", "b.tar", "c.tar"} {
		mustRunCLI(t, "verify", "--insecure-skip-signature", filepath.Join(dir, b))
	}
	fetch("gridengine@2.1.0", "a2.tar")
	fetch("pbspro@2.0.25", "b2.tar")
	mustRunCLI(t, "verify", "--insecure-skip-signature", filepath.Join(dir, "b2.tar"))

	// The README's forms: nothing here is a month old or over 2 GiB.
	kept := diskBytes(t, cache)
	mustRunCLI(t, "cache", "prune", "--max-size", "2G", "--older-than", "30d", "--cache", cache)
	if got := diskBytes(t, cache); got != kept {
		t.Errorf("cache prune --max-size 2G --older-than 30d of a fresh cache under 2 GiB: %d bytes, was %d", got, kept)
	}
	if code, _, stderr := runCLI(t, "cache", "prune", "--cache", cache); code != exitUsage || !strings.Contains(stderr, "--max-size") {
		t.Errorf("cache prune without a limit: exit %d, %q; want exit 2 naming --max-size", code, stderr)
	}
	if code, _, stderr := runCLI(t, "cache", "prune", "--older-than", "soon", "--cache", cache); code != exitUsage {
		t.Errorf("cache prune --older-than soon: exit %d, %q; want exit 2", code, stderr)
	}
	// Flags before the subcommand are its own too.
	mustRunCLI(t, "cache", "--cache", cache, "prune", "--max-size", "1G")
	if code, _, stderr := runCLI(t, "cache", "tidy", "--cache", cache); code != exitUsage || !strings.Contains(stderr, "prune") {
		t.Errorf("cache tidy: exit %d, %q; want exit 2 naming prune", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "a2.tar")); err != nil {
		t.Fatal(err)
	}
}

func TestParseAge(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"12h", 12 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"0d", 0, false},
		{"-1h", 0, false},
		{"d", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	} {
		got, err := parseAge(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
