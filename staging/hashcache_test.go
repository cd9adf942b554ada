package staging

import (
	"os"
	"testing"
	"time"
)

// TestStatusHashCache: a second status reads nothing it hashed before; a
// blob shared by two versions is hashed once; a byte changed with size and
// mtime put back is still found (ctime); --deep reads everything again.
func TestStatusHashCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	// demo 1.0.0 and 1.1.0 share shared-1.0.whl.
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one"), demoProject(t, "1.1.0", "one")}, k.signer))
	status := func(deep bool) *StatusReport {
		t.Helper()
		h := NewHasher(e.state, deep)
		h.racy = 0 // the files were just written
		rep, err := StatusWith(StatusOptions{Root: e.root, StateDir: e.state, Hashes: h})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Save(); err != nil {
			t.Fatalf("save the hash cache: %v", err)
		}
		return rep
	}
	// What a full hash reads: every unique blob once, and the version
	// folders' recorded files.
	var unique int64
	for _, rel := range []string{"demo/blobs/shared-1.0.whl", "demo/blobs/demo-pkg-1.0.0.tar.gz", "demo/blobs/demo-pkg-1.1.0.tar.gz"} {
		st, err := os.Stat(e.staged(rel))
		if err != nil {
			t.Fatal(err)
		}
		unique += st.Size()
	}
	first := status(false)
	if first.Problems != 0 {
		t.Fatalf("first status: %d problems", first.Problems)
	}
	if first.HashedBytes < unique {
		t.Fatalf("first status hashed %d bytes, want at least the %d bytes of the unique blobs", first.HashedBytes, unique)
	}
	shared, _ := os.Stat(e.staged("demo/blobs/shared-1.0.whl"))
	if deep := status(true); deep.HashedBytes != first.HashedBytes {
		t.Errorf("--deep hashed %d bytes, the first status %d (the shared blob of %d bytes must be read once)", deep.HashedBytes, first.HashedBytes, shared.Size())
	}
	if again := status(false); again.HashedBytes != 0 || again.Problems != 0 {
		t.Errorf("second status hashed %d bytes with %d problems; want 0 and 0 (nothing changed)", again.HashedBytes, again.Problems)
	}

	// Flip a byte, keep the size, put the mtime back.
	p := e.staged("demo/blobs/demo-pkg-1.0.0.tar.gz")
	st, _ := os.Stat(p)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, time.Time{}, st.ModTime()); err != nil {
		t.Fatal(err)
	}
	rep := status(false)
	if rep.HashedBytes != st.Size() {
		t.Errorf("after the change status hashed %d bytes, want only the changed blob's %d", rep.HashedBytes, st.Size())
	}
	if rep.Problems == 0 {
		t.Fatalf("a changed blob with its mtime put back was not found")
	}
}

// TestHashCacheNotTrusted: a hash cache file the state folder does not own
// as root's regular file is ignored.
func TestHashCacheNotTrusted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	h := NewHasher(e.state, false)
	h.racy = 0
	if _, err := StatusWith(StatusOptions{Root: e.root, StateDir: e.state, Hashes: h}); err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	p := e.state + "/" + hashCacheName
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	rep, err := StatusWith(StatusOptions{Root: e.root, StateDir: e.state})
	if err != nil {
		t.Fatal(err)
	}
	if rep.HashedBytes == 0 {
		t.Errorf("a world-writable hash cache was trusted")
	}
}
