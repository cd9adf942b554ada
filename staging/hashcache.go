package staging

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/regfile"
)

// hashCacheName is the hash cache's file in the state folder.
const hashCacheName = "hashes.json"

// maxHashCache bounds what is read of the hash cache file.
const maxHashCache = 64 << 20

// racyWindow: a file whose ctime is this close to now may still change
// within the same timestamp, so its hash is used but not remembered.
const racyWindow = 2 * time.Second

// fileKey identifies a file's content without reading it: a change of
// content changes size or mtime, and every change, including an mtime put
// back with touch, changes ctime, which no one can set.
type fileKey struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
}

type hashEntry struct {
	fileKey
	SHA256 string `json:"sha256"`
}

// Hasher hashes staged files for status and plan, each unique file (by
// device and inode) at most once per run, and remembers hashes across runs
// in the state folder (hashes.json, root's like everything there), keyed
// on (device, inode, size, mtime, ctime), so an unchanged tree is checked
// by stat alone. Deep re-hashes everything (status --deep). Safe for
// concurrent use.
type Hasher struct {
	path    string // "" : nothing remembered across runs
	deep    bool
	mu      sync.Mutex
	old     map[fileKey]string
	used    map[fileKey]string
	changed bool
	racy    time.Duration // racyWindow; tests shorten it
	// hashed counts the bytes this run actually read to hash.
	hashed int64
}

// NewHasher returns a Hasher whose cache lives in the state folder state
// ("" or an untrusted folder: this run only). A cache file that is not
// root's regular file, or not readable, is ignored.
func NewHasher(state string, deep bool) *Hasher {
	h := &Hasher{deep: deep, racy: racyWindow, old: map[fileKey]string{}, used: map[fileKey]string{}}
	if state == "" || CheckStateDir(state, false) != nil {
		return h
	}
	h.path = filepath.Join(state, hashCacheName)
	if checkStateEntry(h.path, false) != nil {
		return h
	}
	b, err := regfile.ReadFile(h.path, maxHashCache, regfile.Options{NoFollow: true})
	if err != nil {
		return h
	}
	var entries []hashEntry
	if json.Unmarshal(b, &entries) != nil {
		return h
	}
	for _, e := range entries {
		if len(e.SHA256) == 64 {
			h.old[e.fileKey] = e.SHA256
		}
	}
	return h
}

// Sum returns the hex SHA-256 of the open regular file f (see hashOpen for
// size): from this run's memo or the cache when the file's key matches,
// else by reading it.
func (h *Hasher) Sum(ctx context.Context, f *os.File, size int64) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", fmt.Errorf("fstat %s: %w", f.Name(), err)
	}
	if size >= 0 && st.Size != size {
		return "", fmt.Errorf("%s: %w", f.Name(), errSizeDiffers)
	}
	k := fileKey{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
	h.mu.Lock()
	sum, ok := h.used[k]
	if !ok && !h.deep {
		sum, ok = h.old[k]
		if ok {
			h.used[k] = sum
		}
	}
	h.mu.Unlock()
	if ok {
		return sum, nil
	}
	sum, n, err := hashOpen(ctx, f, size)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hashed += n
	if err != nil {
		return "", err
	}
	// Remember only what cannot still change unseen within one timestamp.
	if time.Since(time.Unix(0, k.Ctime)) > h.racy {
		h.used[k] = sum
		if h.old[k] != sum {
			h.changed = true
		}
	}
	return sum, nil
}

// Save writes the cache: the entries this run used, so it never grows past
// the staging tree. Errors are returned for logging only; a run that
// cannot save (not root) still worked.
func (h *Hasher) Save() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.path == "" || (!h.changed && len(h.used) == len(h.old)) {
		return nil
	}
	entries := make([]hashEntry, 0, len(h.used))
	for k, s := range h.used {
		entries = append(entries, hashEntry{fileKey: k, SHA256: s})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(h.path, b, 0o600)
}

// HashedBytes is how many bytes this Hasher has read to hash so far.
func (h *Hasher) HashedBytes() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hashed
}
