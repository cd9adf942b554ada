package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// TestFetchKeepsADifferentOutput: fetch -o FILE over an existing different
// file is a conflict (exit 5) that leaves it as it was; identical content
// is fine; --force replaces.
func TestFetchKeepsADifferentOutput(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle.tar")
	fetch := func(extra ...string) (int, string) {
		args := append([]string{"fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", filepath.Join(dir, "cache"), "-o", out}, extra...)
		code, _, stderr := runCLI(t, args...)
		return code, stderr
	}
	if code, stderr := fetch("gridengine@2.1.0"); code != exitOK {
		t.Fatalf("first fetch: exit %d: %s", code, stderr)
	}
	first := fileSHA256(t, out)
	if code, stderr := fetch("gridengine@2.1.0"); code != exitOK || fileSHA256(t, out) != first {
		t.Fatalf("fetch of the same release over its own bundle: exit %d: %s", code, stderr)
	}
	code, stderr := fetch("pbspro@2.0.25")
	if code != exitConflict || !strings.Contains(stderr, "holds a different bundle") || !strings.Contains(stderr, "--force") {
		t.Errorf("fetch over a different bundle: exit %d, stderr %q; want exit 5 naming --force", code, stderr)
	}
	if fileSHA256(t, out) != first {
		t.Error("the refused fetch changed the existing file")
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".bundle.tar*")); len(names) != 0 {
		t.Errorf("the refused fetch left %v", names)
	}
	if code, stderr := fetch("--force", "pbspro@2.0.25"); code != exitOK || fileSHA256(t, out) == first {
		t.Errorf("fetch --force: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
