package mirror

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/internal/flock"
)

// TestPruneWaitsForAFetch: a prune never removes what a running fetch
// holds: it waits for the fetch's shared cache lock, says so naming the
// fetch's pid, and prunes once the fetch is done. A fetch starting during
// a prune waits for it in turn, naming the prune's pid.
func TestPruneWaitsForAFetch(t *testing.T) {
	dir := t.TempDir()
	c, err := openCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	sha, _, err := c.put(context.Background(), strings.NewReader(strings.Repeat("x", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	release, err := c.share(context.Background(), "fetching slurm@2.5.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	notices := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		_, err := PruneCache(context.Background(), dir, PruneOptions{MaxSize: 0, Notice: func(s string) { notices <- s }})
		done <- err
	}()
	line := <-notices
	if !strings.Contains(line, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(line, "fetching slurm@2.5.0") {
		t.Errorf("prune's wait line %q does not name the fetch's pid and what it does", line)
	}
	if !c.has(sha, 4096) {
		t.Fatal("the prune removed an object while a fetch held the cache")
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.has(sha, -1) {
		t.Error("the prune did not remove the object once the fetch was done")
	}

	// Now the other way round: a fetch waits for a prune.
	l, err := flock.Acquire(context.Background(), filepath.Join(dir, cacheLockName), flock.Holder{What: "pruning the cache"}, flock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	shared := make(chan func(), 1)
	go func() {
		r, err := c.share(context.Background(), "fetching", func(s string) { got <- s })
		if err != nil {
			t.Error(err)
			r = func() {}
		}
		shared <- r
	}()
	line = <-got
	if !strings.Contains(line, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(line, "pruning the cache") {
		t.Errorf("fetch's wait line %q does not name the prune's pid", line)
	}
	l.Release()
	(<-shared)()
}

// TestPruneOrder: least recently used goes first; --older-than removes by
// age alone; index entries of removed objects go with them.
func TestPruneOrder(t *testing.T) {
	dir := t.TempDir()
	c, err := openCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var shas []string
	for i, age := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour} {
		sha, _, err := c.put(context.Background(), strings.NewReader(strings.Repeat(strconv.Itoa(i), 1000)))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.record(indexEntry{Key: "k" + strconv.Itoa(i), Size: 1000, SHA256: sha}); err != nil {
			t.Fatal(err)
		}
		tm := now.Add(-age)
		os.Chtimes(c.objectPath(sha), tm, tm)
		shas = append(shas, sha)
	}
	u, err := ReadCacheUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Room for one object and the index: the oldest two go.
	if _, err := PruneCache(context.Background(), dir, PruneOptions{MaxSize: u.Bytes - 1500}); err != nil {
		t.Fatal(err)
	}
	want := []bool{false, true, false}
	for i, sha := range shas {
		if c.has(sha, -1) != want[i] {
			t.Errorf("object %d (used %d) kept = %v, want %v", i, i, !want[i], want[i])
		}
		if _, ok := c.lookup("k" + strconv.Itoa(i)); ok != want[i] {
			t.Errorf("index entry %d kept = %v, want %v", i, ok, want[i])
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "index", keyName("k0")[:2], keyName("k0")+".json")); err == nil {
		t.Error("the index entry of a pruned object is still there")
	}
	if _, err := PruneCache(context.Background(), dir, PruneOptions{MaxSize: -1, OlderThan: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if c.has(shas[1], -1) {
		t.Error("--older-than 30m kept an object last used an hour ago")
	}
}
