package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesWholeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "index.json")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new content"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new content" {
		t.Fatalf("content = %q, %v", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("folder holds %d entries, want only the target", len(ents))
	}
}

func TestAbortLeavesTargetUntouched(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half"))
	f.Abort()
	f.Abort()
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	b, _ := os.ReadFile(p)
	if string(b) != "old" {
		t.Errorf("target = %q after Abort, want old", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("folder holds %d entries after Abort, want 1", len(ents))
	}
}

func TestWriteFileIntoMissingFolderFailsNamingPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing", "f")
	err := WriteFile(p, []byte("x"), 0o644)
	if err == nil {
		t.Fatal("write into a missing folder succeeded")
	}
	if want := "write " + p; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

// A temporary file whose writer is gone (closed: as a kill leaves it) is
// removed; one still being written (Create holds its lock), a symlink and
// a folder stay.
func TestRemoveAbandoned(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "f")
	gone, err := Create(target, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	gone.Write([]byte("12345"))
	gone.File.Close()
	busy, err := Create(target, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Abort()
	link := filepath.Join(dir, ".f.tmp-link")
	os.Symlink(gone.Name(), link)
	sub := filepath.Join(dir, ".f.tmp-dir")
	os.Mkdir(sub, 0o755)

	for _, tc := range []struct {
		path    string
		removed bool
	}{{busy.Name(), false}, {link, false}, {sub, false}, {gone.Name(), true}} {
		size := int64(-1)
		ok := RemoveAbandoned(tc.path, func(n int64) { size = n })
		if ok != tc.removed {
			t.Errorf("RemoveAbandoned(%s) = %v, want %v", filepath.Base(tc.path), ok, tc.removed)
		}
		_, err := os.Lstat(tc.path)
		if exists := err == nil; exists == tc.removed {
			t.Errorf("%s exists = %v after RemoveAbandoned", filepath.Base(tc.path), exists)
		}
		if tc.removed && size != 5 || !tc.removed && size != -1 {
			t.Errorf("announced size = %d (removed: %v), want 5 for the removed file only", size, tc.removed)
		}
	}
	if _, err := busy.Write([]byte("still mine")); err != nil {
		t.Fatal(err)
	}
	if err := busy.Commit(); err != nil {
		t.Errorf("the busy writer cannot commit: %v", err)
	}
}
