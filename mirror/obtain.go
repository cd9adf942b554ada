package mirror

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/ccmirror/ccmirror/manifest"
	"golang.org/x/sync/errgroup"
)

// assetRequest is how an asset is downloaded (the URL is the source's
// choice) and the key its download is known by.
func (r *fetchRun) assetRequest(p *projectPlan, bp *blobPlan) (key string, req dlRequest) {
	a := bp.asset
	key = a.URL
	if key == "" {
		key = a.BrowserDownloadURL
	}
	u := r.f.src.assetURL(a)
	req = dlRequest{
		label:  fmt.Sprintf("%s: blob %s (release %s)", p.label(), bp.name, bp.release),
		url:    u,
		header: r.f.src.header(u, "application/octet-stream"),
		size:   a.Size,
		digest: a.SHA256(),
	}
	if a.Digest != "" && req.digest == "" {
		r.f.log.Debug("asset digest in an unknown algorithm, not checked", "asset", a.Name, "digest", a.Digest)
	}
	return key, req
}

// obtain is phase 2: every blob not yet in the cache is downloaded (or
// copied from a blob dir), in parallel, each distinct file once.
func (r *fetchRun) obtain(ctx context.Context, plans []*projectPlan, ip *inPlace) error {
	f := r.f
	type task struct {
		key   string
		req   dlRequest
		file  string // blob-dir copy
		obj   object
		users []*blobPlan
	}
	tasks := map[string]*task{}
	var order []*task
	var expect int64
	for _, p := range plans {
		for _, bp := range p.blobs {
			if bp.origin == "source" {
				r.checkHave(p, bp)
				continue
			}
			// A blob the server holds (known by GitHub's digest) is not
			// even downloaded.
			if bp.asset != nil && bp.asset.SHA256() != "" && f.o.Have != nil &&
				f.o.Have(p.ini.Name, bp.name, bp.asset.SHA256()) {
				bp.have = true
				bp.obj = object{SHA256: bp.asset.SHA256(), Size: bp.asset.Size}
				continue
			}
			var t *task
			if bp.asset != nil {
				key, req := r.assetRequest(p, bp)
				if t = tasks[key]; t == nil {
					t = &task{key: key, req: req}
					if !(req.digest != "" && f.cache.has(req.digest, req.size)) {
						expect += req.size
					}
				}
			} else {
				key := "file:" + bp.file
				if t = tasks[key]; t == nil {
					t = &task{key: key, file: bp.file}
				}
			}
			if tasks[t.key] == nil {
				tasks[t.key] = t
				order = append(order, t)
			}
			t.users = append(t.users, bp)
		}
	}
	r.prog.expect(expect)
	r.prog.describe("download")
	g, gctx := errgroup.WithContext(ctx)
	if ip != nil {
		// What is in the cache already goes into place beside the downloads.
		for _, p := range plans {
			g.Go(func() error { return ip.fill(gctx, manifest.SourcePath(p.ini.Name, p.ini.Version), p.archive, nil) })
			for _, bp := range p.blobs {
				if bp.origin == "source" {
					g.Go(func() error { return ip.fill(gctx, manifest.BlobPath(p.ini.Name, bp.name), bp.obj, nil) })
				}
			}
		}
	}
	for _, t := range order {
		var fu *dlFuture
		if t.file == "" {
			fu = r.pool.start(t.key, t.req)
		}
		g.Go(func() error {
			var err error
			if t.file != "" {
				if err = r.pool.acquire(gctx); err != nil {
					return err
				}
				t.obj, err = r.copyFile(gctx, t.file)
				r.pool.release()
				if err != nil {
					return fmt.Errorf("%s: blob-dir file %s: %w", t.users[0].name, t.file, err)
				}
			} else if t.obj, err = fu.wait(gctx); err != nil {
				return err
			}
			for _, bp := range t.users {
				bp.obj = t.obj
			}
			if ip != nil {
				var sink *teeSink
				if fu != nil {
					sink = fu.sink
				}
				for _, p := range plans {
					for _, bp := range t.users {
						if slices.Contains(p.blobs, bp) {
							if err := ip.fill(gctx, manifest.BlobPath(p.ini.Name, bp.name), t.obj, sink); err != nil {
								return err
							}
						}
					}
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, p := range plans {
		for _, bp := range p.blobs {
			if !bp.have && bp.origin != "source" {
				r.checkHave(p, bp)
			}
		}
	}
	return nil
}

// checkHave asks Options.Have about a blob whose content is known.
func (r *fetchRun) checkHave(p *projectPlan, bp *blobPlan) {
	if r.f.o.Have != nil && r.f.o.Have(p.ini.Name, bp.name, bp.obj.SHA256) {
		bp.have = true
	}
}

// copyFile copies a --blob-dir file into the cache, hashing it on the way,
// so the bundle carries exactly what was hashed.
func (r *fetchRun) copyFile(ctx context.Context, file string) (object, error) {
	fh, err := os.Open(file)
	if err != nil {
		return object{}, err
	}
	defer fh.Close()
	sha, n, err := r.f.cache.put(ctx, fh)
	if err != nil {
		return object{}, err
	}
	return object{SHA256: sha, Size: n}, nil
}
