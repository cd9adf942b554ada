package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/manifest"
)

// The bundle cache keeps the last bundles Fetch wrote, as hard links of the
// output files (no extra space while the output exists), under
// bundles/<key>.tar with bundles/<key>.json describing each. The key is the
// sha256 of everything a bundle's bytes depend on except its creation time:
// the manifest with Created zeroed, the tool version and the signing key.
// A fetch whose manifest gives a known key links the cached bundle to its
// output instead of writing the same bytes again (a re-fetch of an
// unchanged release costs its API calls and a link, whatever its size).
// The bundle then keeps the creation time of the first fetch.
//
// A cached bundle is used only when its size, mtime and inode are those
// recorded when it was cached: a bundle changed in place (through any of
// its links) is never handed out again.

// maxCachedBundles bounds the bundles kept; the least recently used go.
const maxCachedBundles = 8

type bundleStamp struct {
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	MtimeNs int64     `json:"mtime_ns"`
	Ino     uint64    `json:"ino"`
	Created time.Time `json:"created"`
	Used    time.Time `json:"used"`
}

// publicKeyer is implemented by signers that know their public key
// (trust.Signer).
type publicKeyer interface{ PublicKey() ssh.PublicKey }

// bundleKey returns the cache key of the bundle m signed by signer, or ""
// when the bundle cannot be reused (a signer that does not name its key).
func bundleKey(m *manifest.Manifest, signer manifest.Signer) string {
	signedBy := "unsigned"
	if signer != nil {
		pk, ok := signer.(publicKeyer)
		if !ok || pk.PublicKey() == nil {
			return ""
		}
		signedBy = string(ssh.MarshalAuthorizedKey(pk.PublicKey()))
	}
	c := *m
	c.Created = time.Time{}
	b, err := c.Marshal()
	if err != nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "ccmirror bundle cache v1\n%s\n%s\n", manifest.Schema, strings.TrimSpace(signedBy))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (c *cache) bundlePath(key string) string { return filepath.Join(c.dir, "bundles", key+".tar") }

func fileStamp(path string) (size, mtimeNs int64, ino uint64, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, 0, 0, fmt.Errorf("%s is not a regular file", path)
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = s.Ino
	}
	return st.Size(), st.ModTime().UnixNano(), ino, nil
}

// cachedBundle returns the path of the intact cached bundle for key and
// the manifest it holds, or ok false.
func (c *cache) cachedBundle(key string, want *manifest.Manifest) (path string, m *manifest.Manifest, ok bool) {
	if key == "" {
		return "", nil, false
	}
	path = c.bundlePath(key)
	b, err := os.ReadFile(strings.TrimSuffix(path, ".tar") + ".json")
	if err != nil {
		return "", nil, false
	}
	var st bundleStamp
	if json.Unmarshal(b, &st) != nil || st.Key != key {
		return "", nil, false
	}
	size, mt, ino, err := fileStamp(path)
	if err != nil || size != st.Size || mt != st.MtimeNs || ino != st.Ino {
		return "", nil, false
	}
	// The head names what the bundle holds: it must be want but for the
	// creation time.
	f, err := os.Open(path)
	if err != nil {
		return "", nil, false
	}
	defer f.Close()
	rd, err := manifest.NewReader(f)
	if err != nil {
		return "", nil, false
	}
	got := rd.Manifest()
	a, b2 := *got, *want
	a.Created, b2.Created = time.Time{}, time.Time{}
	ja, err1 := a.Marshal()
	jb, err2 := b2.Marshal()
	if err1 != nil || err2 != nil || string(ja) != string(jb) {
		return "", nil, false
	}
	st.Used = time.Now().UTC()
	if nb, err := json.Marshal(st); err == nil {
		_ = c.writeFileAtomic(strings.TrimSuffix(path, ".tar")+".json", nb)
	}
	return path, got, true
}

// keepBundle records the bundle just written at out under key, as a hard
// link. Failing to (another filesystem, no links) only costs the reuse.
func (c *cache) keepBundle(key, out string, created time.Time) {
	if key == "" {
		return
	}
	path := c.bundlePath(key)
	tmp := filepath.Join(c.dir, "tmp", "bundle-"+key[:16]+".tar")
	os.Remove(tmp)
	if err := os.Link(out, tmp); err != nil {
		return
	}
	size, mt, ino, err := fileStamp(tmp)
	if err != nil {
		os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return
	}
	// Renaming a link onto another link of the same file does nothing.
	os.Remove(tmp)
	now := time.Now().UTC()
	b, _ := json.Marshal(bundleStamp{Key: key, Size: size, MtimeNs: mt, Ino: ino, Created: created, Used: now})
	if err := c.writeFileAtomic(strings.TrimSuffix(path, ".tar")+".json", b); err != nil {
		os.Remove(path)
		return
	}
	c.pruneBundles()
}

// pruneBundles keeps the maxCachedBundles most recently used bundles.
func (c *cache) pruneBundles() {
	dir := filepath.Join(c.dir, "bundles")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type kept struct {
		key  string
		used time.Time
	}
	var all []kept
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			if strings.HasSuffix(name, ".tar") {
				if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(name, ".tar")+".json")); errors.Is(err, fs.ErrNotExist) {
					os.Remove(filepath.Join(dir, name))
				}
			}
			continue
		}
		var st bundleStamp
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || json.Unmarshal(b, &st) != nil {
			continue
		}
		all = append(all, kept{strings.TrimSuffix(name, ".json"), st.Used})
	}
	if len(all) <= maxCachedBundles {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.After(all[j].used) })
	for _, k := range all[maxCachedBundles:] {
		os.Remove(filepath.Join(dir, k.key+".tar"))
		os.Remove(filepath.Join(dir, k.key+".json"))
	}
}

// linkBundle puts the cached bundle at out: a hard link made beside out
// and renamed over it, so out is never half there. It reports false when
// linking is impossible (another filesystem): the caller writes the bundle.
func linkBundle(ctx context.Context, cached, out string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if a, err := os.Stat(cached); err == nil {
		if b, err := os.Stat(out); err == nil && os.SameFile(a, b) {
			return true, nil
		}
	}
	dir := filepath.Dir(out)
	tmp, err := os.CreateTemp(dir, atomicfile.TempPrefix(out)+"*")
	if err != nil {
		return false, err
	}
	name := tmp.Name()
	tmp.Close()
	os.Remove(name)
	if err := os.Link(cached, name); err != nil {
		return false, nil
	}
	if err := os.Rename(name, out); err != nil {
		os.Remove(name)
		return false, err
	}
	os.Remove(name)
	// The link is in place; a folder that cannot be synced only weakens
	// its durability, as for the bundle cache itself.
	_ = atomicfile.SyncDir(dir)
	return true, nil
}
