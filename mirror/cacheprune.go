package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccmirror/ccmirror/internal/flock"
)

// The cache lock: every Fetch holds cache/lock shared for as long as it
// runs, PruneCache holds it exclusively, so a prune never removes what a
// running fetch uses and a fetch never starts during a prune. A fetch also
// holds cache/users/<pid>-<n> (internal/flock, with its note), so a prune
// that has to wait can name the processes it waits for.
const (
	cacheLockName = "lock"
	cacheUsersDir = "users"
	// cacheLockWait is how long either side waits for the other; in
	// practice "until it is done" (a fetch may take hours, a prune is
	// quick), bounded so a wedged holder is reported in the end.
	cacheLockWait = 24 * time.Hour
)

var cacheUserSeq atomic.Int64

// share takes the cache lock shared for one fetch; the returned func
// releases it. notice (may be nil) hears of a wait for a prune.
func (c *cache) share(ctx context.Context, what string, notice func(string)) (func(), error) {
	path := filepath.Join(c.dir, cacheLockName)
	l, err := flock.AcquireShared(ctx, path, flock.Options{
		Wait: cacheLockWait,
		OnWait: func(h flock.Holder) {
			if notice != nil {
				notice(fmt.Sprintf("waiting for the cache lock %s, held by %s", path, h))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	users := filepath.Join(c.dir, cacheUsersDir)
	var u *flock.Lock
	upath := filepath.Join(users, fmt.Sprintf("%d-%d", os.Getpid(), cacheUserSeq.Add(1)))
	if err := os.MkdirAll(users, 0o755); err == nil {
		// Only a note for a prune's message: failing to write it costs
		// the pid in that message, nothing else.
		u, _ = flock.Acquire(ctx, upath, flock.Holder{What: what}, flock.Options{})
	}
	return func() {
		if u != nil {
			u.Release()
			os.Remove(upath)
		}
		l.Release()
	}, nil
}

// touch marks an object used now, for PruneCache's least recently used
// order (objects are never changed, so their mtime is free for this).
func (c *cache) touch(sha string) {
	now := time.Now()
	_ = os.Chtimes(c.objectPath(sha), now, now)
}

// CacheKind is one kind of file in the cache and how much of it there is.
type CacheKind struct {
	// Name is the cache folder: objects, bundles, partial, tmp or index.
	Name string `json:"name"`
	// Files is how many files it holds.
	Files int `json:"files"`
	// Bytes is their total size.
	Bytes int64 `json:"bytes"`
}

// CacheKinds names the kinds of CacheUsage, in its order, with what each
// holds.
var CacheKinds = []struct{ Name, Holds string }{
	{"objects", "downloaded archives and assets, named by sha256"},
	{"bundles", "the last bundles written, hard links of fetch outputs"},
	{"partial", "interrupted downloads, resumed by the next fetch"},
	{"tmp", "files being written; left over by a crashed run"},
	{"index", "what each URL was last seen to hold"},
}

// CacheUsage is what a download cache holds.
type CacheUsage struct {
	// Dir is the cache folder.
	Dir string `json:"dir"`
	// Bytes is the size of everything in it, each hard-linked file once.
	Bytes int64 `json:"bytes"`
	// Kinds is the size of each kind, in the order of CacheKinds.
	Kinds []CacheKind `json:"kinds"`
}

// ReadCacheUsage measures the cache at dir ("" means DefaultCacheDir). A
// cache that does not exist yet is empty.
func ReadCacheUsage(dir string) (*CacheUsage, error) {
	dir, err := cacheDirOr(dir)
	if err != nil {
		return nil, err
	}
	u := &CacheUsage{Dir: dir}
	seen := map[[2]uint64]bool{}
	for _, k := range CacheKinds {
		kind := CacheKind{Name: k.Name}
		err := filepath.WalkDir(filepath.Join(dir, k.Name), func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !de.Type().IsRegular() {
				return nil
			}
			st, err := de.Info()
			if err != nil {
				return nil // removed meanwhile
			}
			kind.Files++
			kind.Bytes += st.Size()
			if s, ok := st.Sys().(*syscall.Stat_t); ok {
				id := [2]uint64{uint64(s.Dev), uint64(s.Ino)}
				if seen[id] {
					return nil
				}
				seen[id] = true
			}
			u.Bytes += st.Size()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cache %s: %w", dir, err)
		}
		u.Kinds = append(u.Kinds, kind)
	}
	return u, nil
}

func cacheDirOr(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return DefaultCacheDir()
}

// PruneOptions says what PruneCache removes.
type PruneOptions struct {
	// MaxSize, when >= 0, removes least recently used files until the
	// cache holds at most this many bytes.
	MaxSize int64
	// OlderThan, when > 0, removes what was last used longer ago.
	OlderThan time.Duration
	// Notice hears of a wait for running fetches (nil: silent).
	Notice func(line string)
	// Now is the current time; nil means time.Now.
	Now func() time.Time
}

// PruneResult is what PruneCache did.
type PruneResult struct {
	// Before and After measure the cache around the prune.
	Before, After *CacheUsage
	// Removed is how many files were removed.
	Removed int `json:"removed"`
}

// pruneItem is what is removed together: an object, a bundle with its
// description, a partial download with its description, a temporary file.
type pruneItem struct {
	paths []string
	used  time.Time
	bytes int64
}

// PruneCache removes from the cache at dir ("" means DefaultCacheDir)
// what opts say, least recently used first: objects by when a fetch last
// used them, bundles by when they were last reused, partial downloads and
// temporary files by when they were last written. Index entries whose
// object is gone go too. It holds the cache lock exclusively, waiting for
// running fetches to finish (and naming them to opts.Notice), so it never
// removes a file a fetch is using.
func PruneCache(ctx context.Context, dir string, o PruneOptions) (*PruneResult, error) {
	dir, err := cacheDirOr(dir)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		u, err := ReadCacheUsage(dir)
		return &PruneResult{Before: u, After: u}, err
	}
	lockPath := filepath.Join(dir, cacheLockName)
	l, err := flock.Acquire(ctx, lockPath, flock.Holder{What: "pruning the cache"}, flock.Options{
		Wait: cacheLockWait,
		OnWait: func(flock.Holder) {
			if o.Notice != nil {
				o.Notice(fmt.Sprintf("waiting for the cache lock %s: in use by %s", lockPath, cacheUsers(dir)))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	defer l.Release()
	c := &cache{dir: dir}
	res := &PruneResult{}
	if res.Before, err = ReadCacheUsage(dir); err != nil {
		return nil, err
	}
	items, err := c.pruneItems()
	if err != nil {
		return nil, err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].used.Before(items[j].used) })
	total := res.Before.Bytes
	cutoff := time.Time{}
	if o.OlderThan > 0 {
		cutoff = now().Add(-o.OlderThan)
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		old := !cutoff.IsZero() && it.used.Before(cutoff)
		if !old && !(o.MaxSize >= 0 && total > o.MaxSize) {
			continue
		}
		for _, p := range it.paths {
			if err := os.Remove(p); err == nil {
				res.Removed++
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("cache: %w", err)
			}
		}
		total -= it.bytes
	}
	n, err := c.pruneIndex(cutoff, o.MaxSize)
	res.Removed += n
	if err != nil {
		return nil, err
	}
	if res.After, err = ReadCacheUsage(dir); err != nil {
		return nil, err
	}
	return res, nil
}

// pruneItems lists what PruneCache may remove, with when each was last
// used.
func (c *cache) pruneItems() ([]pruneItem, error) {
	var items []pruneItem
	walk := func(sub string, f func(p string, st fs.FileInfo)) error {
		err := filepath.WalkDir(filepath.Join(c.dir, sub), func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if de.Type().IsRegular() {
				if st, err := de.Info(); err == nil {
					f(p, st)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		return nil
	}
	one := func(p string, st fs.FileInfo) {
		items = append(items, pruneItem{paths: []string{p}, used: st.ModTime(), bytes: st.Size()})
	}
	if err := walk("objects", one); err != nil {
		return nil, err
	}
	if err := walk("tmp", one); err != nil {
		return nil, err
	}
	// A partial download and its description go together; the download
	// was last used when it was last written.
	if err := walk("partial", func(p string, st fs.FileInfo) {
		if strings.HasSuffix(p, ".json") {
			if _, err := os.Stat(strings.TrimSuffix(p, ".json")); err == nil {
				return
			}
		}
		it := pruneItem{paths: []string{p}, used: st.ModTime(), bytes: st.Size()}
		if m, err := os.Stat(p + ".json"); err == nil {
			it.paths = append(it.paths, p+".json")
			it.bytes += m.Size()
		}
		items = append(items, it)
	}); err != nil {
		return nil, err
	}
	// A bundle and its stamp go together, used when the stamp says.
	if err := walk("bundles", func(p string, st fs.FileInfo) {
		base, ok := strings.CutSuffix(p, ".json")
		if !ok {
			if _, err := os.Stat(strings.TrimSuffix(p, ".tar") + ".json"); err == nil && strings.HasSuffix(p, ".tar") {
				return // listed with its stamp
			}
			one(p, st)
			return
		}
		it := pruneItem{paths: []string{p}, used: st.ModTime(), bytes: st.Size()}
		var stamp bundleStamp
		if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &stamp) == nil && !stamp.Used.IsZero() {
			it.used = stamp.Used
		}
		if t, err := os.Stat(base + ".tar"); err == nil {
			it.paths = append([]string{base + ".tar"}, it.paths...)
			it.bytes += t.Size()
		}
		items = append(items, it)
	}); err != nil {
		return nil, err
	}
	return items, nil
}

// pruneIndex removes index entries whose object is gone, those last
// updated before cutoff (when set), and, while the cache is still over
// maxSize (when >= 0), the oldest others.
func (c *cache) pruneIndex(cutoff time.Time, maxSize int64) (int, error) {
	removed := 0
	var keep []pruneItem
	err := filepath.WalkDir(filepath.Join(c.dir, "index"), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !de.Type().IsRegular() {
			return nil
		}
		st, err := de.Info()
		if err != nil {
			return nil
		}
		var e indexEntry
		b, rerr := os.ReadFile(p)
		stale := rerr != nil || json.Unmarshal(b, &e) != nil ||
			(e.SHA256 != "" && !c.has(e.SHA256, -1)) ||
			(!cutoff.IsZero() && st.ModTime().Before(cutoff))
		if stale {
			if os.Remove(p) == nil {
				removed++
			}
			return nil
		}
		keep = append(keep, pruneItem{paths: []string{p}, used: st.ModTime(), bytes: st.Size()})
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("cache: %w", err)
	}
	if maxSize < 0 {
		return removed, nil
	}
	u, err := ReadCacheUsage(c.dir)
	if err != nil {
		return removed, err
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].used.Before(keep[j].used) })
	total := u.Bytes
	for _, it := range keep {
		if total <= maxSize {
			break
		}
		if os.Remove(it.paths[0]) == nil {
			removed++
		}
		total -= it.bytes
	}
	return removed, nil
}

// cacheUsers names the processes holding the cache lock shared, from the
// notes under cache/users, and removes the notes of those gone.
func cacheUsers(dir string) string {
	ents, _ := os.ReadDir(filepath.Join(dir, cacheUsersDir))
	var names []string
	for _, e := range ents {
		p := filepath.Join(dir, cacheUsersDir, e.Name())
		if h, held := flock.Held(p); held {
			names = append(names, h.String())
		} else if pid, _, _ := strings.Cut(e.Name(), "-"); pid != strconv.Itoa(os.Getpid()) {
			os.Remove(p)
		}
	}
	if len(names) == 0 {
		return "another ccmirror process (it has not written its pid yet)"
	}
	return strings.Join(names, ", ")
}
