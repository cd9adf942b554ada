package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/manifest"
)

// Cache layout under Options.CacheDir:
//
//	objects/ab/abcdef…    content, named by its sha256
//	index/xy/xyz….json    what a URL was last seen to hold: ETag, digest, size, sha256
//	partial/xyz…          an interrupted download, resumed by the next attempt or run
//	partial/xyz….json     what that partial download is of (URL, digest, size, ETag)
//	tmp/                  objects being written, renamed into objects/ when complete
//	bundles/<key>.tar     the last bundles written, hard links (see bundlecache.go)
//
// An object is hashed as it is stored and named by that hash; it is hashed
// again whenever it is copied into a bundle (nothing on disk proves its
// bytes unchanged since), and an object found changed is dropped and
// downloaded again (see verify.go).
//
// Index and partial names are the sha256 of the download's key (the asset's
// API URL or the archive URL). Everything is written to a temporary file and
// renamed: objects through tmp/, index and partial descriptions with
// internal/atomicfile (fsynced, beside their target), so a crash never
// leaves a half-written object or index entry.
type cache struct {
	dir string

	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// indexEntry records what a download key last resolved to.
type indexEntry struct {
	Key     string    `json:"key"`
	ETag    string    `json:"etag,omitempty"`
	Digest  string    `json:"digest,omitempty"` // hex sha256 GitHub announced
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Commit  string    `json:"commit,omitempty"` // a tag record: the commit its archive was fetched at
	Updated time.Time `json:"updated"`
}

// partialMeta describes a partial download so a later attempt only resumes
// the same content.
type partialMeta struct {
	Key    string `json:"key"`
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size"`
	ETag   string `json:"etag,omitempty"`
}

func openCache(dir string) (*cache, error) {
	for _, sub := range []string{"objects", "index", "partial", "tmp", "bundles"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	return &cache{dir: dir, locks: map[string]*keyLock{}}, nil
}

// lock serialises work on one key within the process; the returned func
// unlocks.
func (c *cache) lock(key string) func() {
	c.mu.Lock()
	l := c.locks[key]
	if l == nil {
		l = &keyLock{}
		c.locks[key] = l
	}
	l.refs++
	c.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		c.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(c.locks, key)
		}
		c.mu.Unlock()
	}
}

func keyName(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// objectPath is where content with this sha256 lives.
func (c *cache) objectPath(sha string) string {
	return filepath.Join(c.dir, "objects", sha[:2], sha)
}

// has reports whether the object exists with the given size (any size when
// size < 0).
func (c *cache) has(sha string, size int64) bool {
	if !manifest.ValidHash(sha) {
		return false
	}
	st, err := os.Stat(c.objectPath(sha))
	return err == nil && st.Mode().IsRegular() && (size < 0 || st.Size() == size)
}

func (c *cache) indexPath(key string) string {
	k := keyName(key)
	return filepath.Join(c.dir, "index", k[:2], k+".json")
}

// lookup returns the index entry for key, if any and if its object exists.
func (c *cache) lookup(key string) (indexEntry, bool) {
	b, err := os.ReadFile(c.indexPath(key))
	if err != nil {
		return indexEntry{}, false
	}
	var e indexEntry
	if json.Unmarshal(b, &e) != nil || e.Key != key || !c.has(e.SHA256, e.Size) {
		return indexEntry{}, false
	}
	return e, true
}

// tagCommit returns the commit a tag's archive was last fetched at.
func (c *cache) tagCommit(key string) (string, bool) {
	b, err := os.ReadFile(c.indexPath(key))
	if err != nil {
		return "", false
	}
	var e indexEntry
	if json.Unmarshal(b, &e) != nil || e.Key != key || e.Commit == "" {
		return "", false
	}
	return e.Commit, true
}

// hint reports whether the cache holds the hint record key (see
// recordHint).
func (c *cache) hint(key string) bool {
	b, err := os.ReadFile(c.indexPath(key))
	if err != nil {
		return false
	}
	var e indexEntry
	return json.Unmarshal(b, &e) == nil && e.Key == key
}

// recordHint remembers key, a fact about an earlier run that only makes a
// later one faster (never changes what it fetches); dropHint forgets it.
func (c *cache) recordHint(key string) error { return c.record(indexEntry{Key: key}) }

func (c *cache) dropHint(key string) { os.Remove(c.indexPath(key)) }

// recordTagCommit remembers the commit a tag's archive was fetched at.
func (c *cache) recordTagCommit(key, commit string) error {
	return c.record(indexEntry{Key: key, Commit: commit})
}

// record stores the index entry for e.Key.
func (c *cache) record(e indexEntry) error {
	e.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return c.writeFileAtomic(c.indexPath(e.Key), b)
}

func (c *cache) writeFileAtomic(dst string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(dst, b, 0o644)
}

// adopt moves a complete, hashed file into objects/. When the object exists
// already the file is dropped: same name, same content.
func (c *cache) adopt(path, sha string) error {
	dst := c.objectPath(sha)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return err
	}
	return os.Rename(path, dst)
}

// put stores r's content as an object, hashing it on the way, and returns
// its sha256 and size.
func (c *cache) put(ctx context.Context, r io.Reader) (string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "put-*")
	if err != nil {
		return "", 0, err
	}
	atomicfile.TryLock(tmp) // held while it is written: sweepTmp leaves it alone
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxio.NewReader(ctx, r))
	if err == nil {
		// Durable before it is named.
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", 0, err
	}
	sha := hex.EncodeToString(h.Sum(nil))
	if err := c.adopt(tmp.Name(), sha); err != nil {
		os.Remove(tmp.Name())
		return "", 0, err
	}
	return sha, n, nil
}

// object is a file in the cache.
type object struct {
	SHA256 string
	Size   int64
	ETag   string
}

// fetchStats says where an object's bytes came from.
type fetchStats struct {
	net   int64 // bytes received over the network
	hit   bool  // reused from the cache, no content transferred
	saved int64 // bytes not downloaded thanks to the cache
}

// fetch returns the object for req, downloading only what the cache cannot
// prove it already holds: an object matching GitHub's digest is used as is;
// otherwise the last ETag seen for the key makes the request conditional
// (304 means reuse). Interrupted downloads stay in partial/ and are resumed
// with Range by the next attempt, in this run or a later one. Content that
// fails verification is removed.
func (c *cache) fetch(ctx context.Context, d *downloader, key string, req dlRequest) (object, fetchStats, error) {
	unlock := c.lock(key)
	defer unlock()

	if req.digest != "" && c.has(req.digest, req.size) {
		if _, ok := c.lookup(key); !ok {
			_ = c.record(indexEntry{Key: key, Digest: req.digest, Size: req.size, SHA256: req.digest})
		}
		c.touch(req.digest)
		return object{SHA256: req.digest, Size: req.size}, fetchStats{hit: true, saved: req.size}, nil
	}
	if req.immutable {
		// The key names the content: what was stored under it is it, as
		// long as it still has the size (and digest, if any) announced.
		if e, ok := c.lookup(key); ok && (req.size < 0 || e.Size == req.size) && (req.digest == "" || e.SHA256 == req.digest) {
			c.touch(e.SHA256)
			return object{SHA256: e.SHA256, Size: e.Size, ETag: e.ETag}, fetchStats{hit: true, saved: e.Size}, nil
		}
	}
	var known indexEntry
	if e, ok := c.lookup(key); ok && (req.size < 0 || e.Size == req.size) && req.digest == "" && e.ETag != "" {
		known = e
		req.ifNone = e.ETag
	}

	ppath := filepath.Join(c.dir, "partial", keyName(key))
	mpath := ppath + ".json"
	meta := partialMeta{Key: key, Digest: req.digest, Size: req.size}
	f, off, etag, persistent, err := c.openPartial(ppath, mpath, meta)
	if err != nil {
		return object{}, fetchStats{}, fmt.Errorf("%s: cache: %w", req.label, err)
	}
	if !persistent {
		// Another process is downloading the same file: work privately.
		ppath, mpath = f.Name(), ""
		defer os.Remove(ppath)
	}
	if off > 0 {
		req.ifNone = "" // resuming: the conditional request does not apply
		known = indexEntry{}
	}
	closed := false
	defer func() {
		if !closed {
			f.Close()
		}
	}()
	h, err := hashFile(ctx, f, off)
	if err != nil {
		return object{}, fetchStats{}, fmt.Errorf("%s: cache: %w", req.label, err)
	}
	if req.sink != nil {
		req.sink.open(f, off)
		defer req.sink.closeSrc()
	}
	onHeaders := func(etag string) {
		if mpath == "" {
			return
		}
		m := meta
		m.ETag = etag
		if b, err := json.Marshal(m); err == nil {
			_ = c.writeFileAtomic(mpath, b)
		}
	}
	var stats fetchStats
	res, err := d.download(ctx, req, f, h, off, etag, onHeaders)
	stats.net += res.net
	if err != nil && errors.Is(err, manifest.ErrVerify) && (off > 0 || res.resumed) {
		// The pieces of a resumed download may come from different
		// versions of the file: try once from scratch before failing.
		d.policy.log.Info("verification failed after resuming, downloading again", "file", req.label)
		if err = f.Truncate(0); err == nil {
			h.Reset()
			res, err = d.download(ctx, req, f, h, 0, "", onHeaders)
			stats.net += res.net
		}
	}
	if err != nil {
		f.Close()
		closed = true
		if errors.Is(err, manifest.ErrVerify) {
			removePartial(ppath, mpath)
		}
		return object{}, stats, err
	}
	if req.received != nil {
		req.received()
	}
	if res.notModified {
		f.Close()
		closed = true
		removePartial(ppath, mpath)
		c.touch(known.SHA256)
		return object{SHA256: known.SHA256, Size: known.Size, ETag: known.ETag}, fetchStats{hit: true, saved: known.Size, net: stats.net}, nil
	}
	if err := f.Sync(); err != nil {
		return object{}, stats, fmt.Errorf("%s: cache: %w", req.label, errclass.Local("sync", f.Name(), err))
	}
	if runtime.GOOS == "windows" {
		// An open file cannot be renamed there (and is not locked).
		closed = true
		if err := f.Close(); err != nil {
			return object{}, stats, fmt.Errorf("%s: cache: %w", req.label, err)
		}
	}
	// Renamed while still locked, so no other process can touch it between
	// the hash and the move.
	if err := c.adopt(ppath, res.sha256); err != nil {
		return object{}, stats, fmt.Errorf("%s: cache: %w", req.label, errclass.Local("store", c.objectPath(res.sha256), err))
	}
	removePartial("", mpath)
	if !closed {
		closed = true
		if err := f.Close(); err != nil {
			return object{}, stats, fmt.Errorf("%s: cache: %w", req.label, err)
		}
	}
	if err := c.record(indexEntry{Key: key, ETag: res.etag, Digest: req.digest, Size: res.size, SHA256: res.sha256}); err != nil {
		return object{}, stats, fmt.Errorf("%s: cache: %w", req.label, err)
	}
	return object{SHA256: res.sha256, Size: res.size, ETag: res.etag}, stats, nil
}

// openPartial opens the partial download file for meta, locked against
// other processes. An existing partial file is kept (to resume) only when
// its description matches meta; it returns the bytes already there and the
// ETag they were served with. When another process holds the partial file,
// a private temporary file is used instead (persistent is false: nothing to
// resume later).
func (c *cache) openPartial(ppath, mpath string, meta partialMeta) (f *os.File, off int64, etag string, persistent bool, err error) {
	f, err = os.OpenFile(ppath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, "", false, err
	}
	if !atomicfile.TryLock(f) {
		f.Close()
		f, err = os.CreateTemp(filepath.Dir(ppath), filepath.Base(ppath)+".*.tmp")
		if err == nil {
			atomicfile.TryLock(f) // held while it is written: sweepTmp leaves it alone
		}
		return f, 0, "", false, err
	}
	var old partialMeta
	keep := false
	if b, err := os.ReadFile(mpath); err == nil && json.Unmarshal(b, &old) == nil {
		keep = old.Key == meta.Key && old.Digest == meta.Digest && old.Size == meta.Size &&
			(meta.Digest != "" || old.ETag != "")
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, "", false, err
	}
	if !keep || st.Size() == 0 {
		os.Remove(mpath)
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, 0, "", false, err
		}
		return f, 0, "", true, nil
	}
	return f, st.Size(), old.ETag, true, nil
}

func removePartial(ppath, mpath string) {
	if ppath != "" {
		os.Remove(ppath)
	}
	if mpath != "" {
		os.Remove(mpath)
	}
}

// sweepTmp removes the temporary files crashed or killed runs left:
// objects being written under tmp/, private partial downloads (*.tmp) and
// the temporary files of atomic writes (atomicfile) beside index and
// partial entries. Their writers hold them locked, so whatever nobody
// holds is abandoned (atomicfile.RemoveAbandoned); each removal is logged.
func (c *cache) sweepTmp(log *slog.Logger) {
	for _, sub := range []string{"tmp", "partial", "index", "bundles"} {
		_ = filepath.WalkDir(filepath.Join(c.dir, sub), func(p string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return nil
			}
			atomicTemp := strings.HasPrefix(de.Name(), ".") && strings.Contains(de.Name(), ".tmp-")
			if sub != "tmp" && !atomicTemp && !(sub == "partial" && strings.HasSuffix(p, ".tmp")) {
				return nil
			}
			atomicfile.RemoveAbandoned(p, func(size int64) {
				log.Info("sweeping a temporary cache file an interrupted run left", "path", p, "size", size)
			})
			return nil
		})
	}
}
