package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/diskhint"
	"github.com/ccmirror/ccmirror/manifest"
)

// A bundle written in place: when a fetch's layout is known before its
// downloads (one project, every size known), the bundle file is created
// first and every download is written into the cache and, at its offset,
// into the bundle at once; cache hits are copied into place alongside.
// What is left when the last byte arrives is the head (SHA256SUMS, the
// signature, manifest.json and the tar headers), an fsync and a rename.
// The bytes are those manifest.WriteBundle writes (manifest.PlanBundle).
// Whenever something does not fit the plan, Fetch falls back to writing the
// bundle from the cache afterwards.

// placeholderHash stands for a hash not known yet: hashes are fixed-length.
var placeholderHash = strings.Repeat("0", 64)

// inPlace is a bundle being written in place.
type inPlace struct {
	f       *Fetcher
	out     string
	file    *atomicfile.File // renamed to out by Commit
	tmp     *os.File         // file's descriptor
	layout  *manifest.Layout
	regions map[string]*region // bundle path -> its data
	byKey   map[string]string  // download key -> the bundle path it is mirrored to

	broken    atomic.Bool
	committed bool
}

type region struct {
	off, size int64
	done      atomic.Bool
}

// planInPlace prepares an in-place bundle for plans, or returns nil when
// the fetch does not qualify (the bundle is then written afterwards).
// *out is set to the default output when empty.
func (r *fetchRun) planInPlace(plans []*projectPlan, out *string) *inPlace {
	f := r.f
	skip := func(why string, args ...any) *inPlace {
		f.log.Debug("bundle written after the downloads: "+why, args...)
		return nil
	}
	if len(plans) != 1 || f.o.Have != nil {
		return skip("several projects or a request")
	}
	sigLen := 0
	if f.o.Signer != nil {
		ss, ok := f.o.Signer.(interface{ SignatureSize() int })
		if !ok || ss.SignatureSize() <= 0 {
			return skip("signature length unknown in advance")
		}
		sigLen = ss.SignatureSize()
	}
	// Sizes from the release and the blob dirs, hashes as placeholders;
	// and hashes as far as known (GitHub's digests, the cache index) to
	// see whether the bundle cache will serve the bundle anyway.
	sizes := map[*blobPlan]int64{}
	predicted := true
	predict := map[*blobPlan]string{}
	for _, p := range plans {
		for _, bp := range p.blobs {
			switch {
			case bp.origin == "source":
			case bp.asset != nil:
				if bp.asset.Size < 0 {
					return skip("asset size unknown", "asset", bp.asset.Name)
				}
				sizes[bp] = bp.asset.Size
				key, req := r.assetRequest(p, bp)
				if req.digest != "" {
					predict[bp] = req.digest
				} else if e, ok := f.cache.lookup(key); ok && e.Size == bp.asset.Size {
					predict[bp] = e.SHA256
				} else {
					predicted = false
				}
			default:
				st, err := os.Stat(bp.file)
				if err != nil || !st.Mode().IsRegular() {
					return skip("blob-dir file unreadable", "file", bp.file)
				}
				sizes[bp] = st.Size()
				predicted = false
			}
		}
	}
	if predicted {
		pm, _, err := r.buildWith(plans, func(bp *blobPlan) object {
			if bp.origin == "source" {
				return bp.obj
			}
			return object{SHA256: predict[bp], Size: sizes[bp]}
		})
		if err == nil {
			if _, _, ok := f.cache.cachedBundle(bundleKey(pm, f.o.Signer), pm); ok {
				return skip("the bundle cache holds it")
			}
		}
	}
	pm, entries, err := r.buildWith(plans, func(bp *blobPlan) object {
		if bp.origin == "source" {
			return bp.obj
		}
		return object{SHA256: placeholderHash, Size: sizes[bp]}
	})
	if err != nil {
		return skip("no manifest", "error", err.Error())
	}
	layout, err := manifest.PlanBundle(pm, entries, sigLen)
	if err != nil {
		return skip("no layout", "error", err.Error())
	}
	if *out == "" {
		*out = DefaultOutput(pm.Projects, pm.Created)
	}
	if st, err := os.Stat(*out); err == nil && st.IsDir() {
		return skip("output is a directory")
	}
	f.sweepTemps(*out)
	file, err := atomicfile.Create(*out, 0o644)
	if err != nil {
		return skip("no temporary file", "error", err.Error())
	}
	if err := file.Truncate(layout.Size()); err != nil {
		file.Abort()
		return skip("cannot size the bundle", "error", err.Error())
	}
	ip := &inPlace{f: f, out: *out, file: file, tmp: file.File, layout: layout, regions: map[string]*region{}, byKey: map[string]string{}}
	for _, e := range entries {
		off, size, _ := layout.DataOffset(e.Path)
		ip.regions[e.Path] = &region{off: off, size: size}
	}
	p := plans[0]
	for _, bp := range p.blobs {
		if bp.asset == nil {
			continue
		}
		key, _ := r.assetRequest(p, bp)
		if _, ok := ip.byKey[key]; !ok {
			ip.byKey[key] = manifest.BlobPath(p.ini.Name, bp.name)
		}
	}
	// Downloads already under way are mirrored from now on; later ones
	// from their start (pool.start).
	r.pool.observe(ip)
	f.log.Debug("bundle laid out in place", "path", file.Name(), "size", layout.Size())
	return ip
}

// attach mirrors the download of key into its region, if it has one.
func (ip *inPlace) attach(key string, s *teeSink) {
	if s == nil {
		return
	}
	if path, ok := ip.byKey[key]; ok {
		s.attach(ip.tmp, ip.regions[path].off)
	}
}

// fail abandons the in-place bundle: Fetch writes it afterwards.
func (ip *inPlace) fail(why string, args ...any) {
	if !ip.broken.Swap(true) {
		ip.f.log.Debug("in-place bundle abandoned: "+why, args...)
	}
}

// fill makes sure the region of path holds obj: the download's sink
// mirrored it already, or it is copied from the cache now.
func (ip *inPlace) fill(ctx context.Context, path string, obj object, s *teeSink) error {
	if ip.broken.Load() {
		return nil
	}
	rg := ip.regions[path]
	if rg == nil || obj.Size != rg.size {
		ip.fail("size differs from the plan", "path", path)
		return nil
	}
	if s != nil && s.holds(ip.tmp, rg.off, rg.size) {
		rg.done.Store(true)
		return nil
	}
	if err := ip.copyObject(ctx, obj, rg); err != nil {
		if ctx.Err() != nil || errors.Is(err, manifest.ErrVerify) {
			return err
		}
		ip.fail("copy failed", "path", path, "error", err.Error())
		return nil
	}
	rg.done.Store(true)
	return nil
}

// copyObject copies a cache object into its region, hashing it on the
// way: whatever its size and mtime say, the bytes in the bundle must be the ones
// its sums name.
func (ip *inPlace) copyObject(ctx context.Context, obj object, rg *region) error {
	src, err := os.Open(ip.f.cache.objectPath(obj.SHA256))
	if err != nil {
		return err
	}
	defer src.Close()
	h := sha256.New()
	w := io.MultiWriter(io.NewOffsetWriter(ip.tmp, rg.off), h)
	n, err := io.Copy(w, io.LimitReader(ctxio.NewReader(ctx, src), obj.Size+1))
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != obj.Size || got != obj.SHA256 {
		return fmt.Errorf("cache object %s changed: %w", obj.SHA256, manifest.ErrVerify)
	}
	diskhint.StartWriteback(ip.tmp, rg.off, n)
	return nil
}

// finish writes the head, syncs the bundle and renames it to out. It
// reports false (and removes the file) when the bundle did not come out as
// planned: the caller writes it the ordinary way.
func (ip *inPlace) finish(ctx context.Context, m *manifest.Manifest, entries []manifest.Entry) (bool, error) {
	if ip.broken.Load() {
		ip.discard()
		return false, nil
	}
	for path, rg := range ip.regions {
		if !rg.done.Load() {
			ip.fail("region not filled", "path", path)
			ip.discard()
			return false, nil
		}
	}
	sb, err := ip.layout.Sums(m)
	if err != nil {
		ip.discard()
		return false, nil
	}
	var sig []byte
	if s := ip.f.o.Signer; s != nil {
		if sig, err = s.Sign(sb); err != nil {
			return false, fmt.Errorf("fetch: write %s: sign %s: %w", ip.out, manifest.SumsName, err)
		}
		if len(sig) == 0 || len(sig) > manifest.MaxSignatureSize {
			return false, fmt.Errorf("fetch: write %s: signature is %d bytes, want 1 to %d", ip.out, len(sig), manifest.MaxSignatureSize)
		}
	}
	if err := ip.layout.WriteHead(ip.tmp, m, entries, sig); err != nil {
		ip.fail("head", "error", err.Error())
		ip.discard()
		if errors.Is(err, manifest.ErrLayout) {
			return false, nil
		}
		return false, fmt.Errorf("fetch: write %s: %w", ip.out, err)
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("fetch: %w", err)
	}
	ip.committed = true // Commit removes the file when it fails
	if err := ip.file.Commit(); err != nil {
		return false, fmt.Errorf("fetch: %w", err)
	}
	return true, nil
}

// discard removes the bundle file unless it was renamed into place.
func (ip *inPlace) discard() {
	if ip == nil || ip.committed {
		return
	}
	ip.file.Abort()
	ip.committed = true // nothing left to remove
}
