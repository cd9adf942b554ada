package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"

	"github.com/ccmirror/ccmirror/internal/ctxio"
)

// A fetch never signs bytes it has not checked: every byte that goes into
// a bundle is hashed on the way (from a download, or copied from the
// cache) and compared with the sum it is signed under. When bytes copied
// from the cache fail, the cache object changed on disk after it was
// stored (size and mtime can be put back); dropChanged finds and drops such
// objects so that the same fetch downloads them again and the cache heals.

// dropChanged hashes every cache object the plans use again and drops the
// ones whose bytes no longer match their name. It returns what they were.
func (r *fetchRun) dropChanged(ctx context.Context, plans []*projectPlan) []string {
	var bad []string
	seen := map[string]bool{}
	check := func(what string, obj object) {
		if obj.SHA256 == "" || seen[obj.SHA256] || ctx.Err() != nil {
			return
		}
		seen[obj.SHA256] = true
		if r.f.cache.matches(ctx, obj) || ctx.Err() != nil {
			return
		}
		r.f.cache.drop(obj.SHA256)
		r.f.log.Info("cache object changed on disk: dropped", "file", what, "sha256", obj.SHA256)
		bad = append(bad, what)
	}
	for _, p := range plans {
		if p == nil {
			continue
		}
		check(p.label()+": source archive", p.archive)
		for _, bp := range p.blobs {
			if !bp.have {
				check(p.label()+": blob "+bp.name, bp.obj)
			}
		}
	}
	return bad
}

// matches reports whether the object named by obj.SHA256 holds exactly
// obj.Size bytes with that hash.
func (c *cache) matches(ctx context.Context, obj object) bool {
	f, err := os.Open(c.objectPath(obj.SHA256))
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(ctxio.NewReader(ctx, f), obj.Size+1))
	return err == nil && n == obj.Size && hex.EncodeToString(h.Sum(nil)) == obj.SHA256
}

// drop removes an object from the cache; index entries naming it stop
// resolving (lookup checks the object).
func (c *cache) drop(sha string) {
	os.Remove(c.objectPath(sha))
}
