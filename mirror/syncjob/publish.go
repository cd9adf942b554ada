package syncjob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/transport/blob"
)

// publish makes the publish location hold every bundle of the index and
// then the index itself. It lists the location once and uploads only what
// is missing or different there, so a run after a failed upload finishes
// the job and a run with nothing new uploads nothing. The index goes last,
// index.json before index.json.sig, and only when every bundle it names is
// in place: readers never see an index naming a missing bundle.
func (r *run) publish(ctx context.Context) error {
	loc, err := publishLocation(r.cfg.Publish)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	ixPath := filepath.Join(r.cfg.Output, IndexName)
	ixData, err := os.ReadFile(ixPath)
	if errors.Is(err, fs.ErrNotExist) {
		r.log.Info("nothing to publish yet: no index.json")
		return nil
	}
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	sigData, err := os.ReadFile(filepath.Join(r.cfg.Output, IndexSigName))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	bo := r.o.Blob
	if bo.Log == nil {
		bo.Log = r.log
	}
	remote, err := blob.List(ctx, containerURL(loc), loc.Path, bo)
	if errors.Is(err, blob.ErrNotFound) {
		// A new container: Push creates it.
		remote, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	have := map[string]blob.BlobInfo{}
	for _, b := range remote {
		have[b.Name] = b
	}
	for _, e := range r.ix.Bundles {
		if ctx.Err() != nil {
			return fmt.Errorf("publish: %w", ctx.Err())
		}
		name := loc.Path + e.File
		if b, ok := have[name]; ok && b.Size == e.Size && b.SHA256 == e.SHA256 {
			continue
		}
		local := filepath.Join(r.cfg.Output, e.File)
		if _, err := os.Stat(local); err != nil {
			return fmt.Errorf("publish: bundle %s is listed in index.json but is neither in %s nor at %s; not publishing an index that names it: %w",
				e.File, r.cfg.Output, loc.BlobURL(name), err)
		}
		res, err := blob.Push(ctx, local, blobURL(loc, name), bo)
		if err != nil {
			return fmt.Errorf("publish %s: %w", e.File, err)
		}
		if res.SHA256 != e.SHA256 || res.Size != e.Size {
			return fmt.Errorf("publish %s: the file in %s (sha256 %s, %d bytes) is not the bundle index.json lists (sha256 %s, %d bytes): %w",
				e.File, r.cfg.Output, res.SHA256, res.Size, e.SHA256, e.Size, manifest.ErrVerify)
		}
		if !res.Skipped {
			r.sum.Published = append(r.sum.Published, loc.BlobURL(name))
			r.log.Info("published bundle", "url", loc.BlobURL(name), "size", res.Size)
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{IndexName, ixData}, {IndexSigName, sigData}} {
		name := loc.Path + f.name
		sum := sha256.Sum256(f.data)
		if b, ok := have[name]; ok && b.Size == int64(len(f.data)) && b.SHA256 == hex.EncodeToString(sum[:]) {
			continue
		}
		if err := blob.Put(ctx, blobURL(loc, name), f.data, bo); err != nil {
			return fmt.Errorf("publish %s: %w", f.name, err)
		}
		r.sum.Published = append(r.sum.Published, loc.BlobURL(name))
		r.log.Info("published", "url", loc.BlobURL(name))
	}
	return nil
}

// blobURL is the URL of blob name in loc's container, with loc's SAS.
func blobURL(loc *blob.Location, name string) string {
	u := loc.BlobURL(name)
	if loc.SAS != "" {
		u += "?" + loc.SAS
	}
	return u
}

// containerURL is loc's container URL with its SAS.
func containerURL(loc *blob.Location) string {
	u := loc.ContainerURL()
	if loc.SAS != "" {
		u += "?" + loc.SAS
	}
	return u
}
