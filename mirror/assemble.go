package mirror

import (
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
)

// build is phase 3: the manifest and the bundle entries.
func (r *fetchRun) build(plans []*projectPlan) (*manifest.Manifest, []manifest.Entry, error) {
	return r.buildWith(plans, nil)
}

// buildWith is build with each blob's content given by objOf (nil: the
// blob's own), to plan a bundle before its content is known.
func (r *fetchRun) buildWith(plans []*projectPlan, objOf func(*blobPlan) object) (*manifest.Manifest, []manifest.Entry, error) {
	f := r.f
	m := &manifest.Manifest{
		Schema:  manifest.Schema,
		Created: f.o.Now().UTC().Truncate(time.Second),
		Tool:    "ccmirror " + Version,
	}
	open := map[string]string{} // bundle path -> cache object
	carried := map[string]manifest.Blob{}
	for _, p := range plans {
		name, version := p.ini.Name, p.ini.Version
		mp := manifest.Project{
			Name:       name,
			Version:    version,
			Repository: p.ref.Repository(),
			Tag:        p.rel.Tag,
			Commit:     p.commit,
			ReleaseURL: p.rel.HTMLURL,
			Source: manifest.File{
				Path:   manifest.SourcePath(name, version),
				Size:   p.archive.Size,
				SHA256: p.archive.SHA256,
				URL:    p.archURL,
			},
			Blobs: []manifest.Blob{},
		}
		if f.o.Replaces != nil {
			mp.Replaces = f.o.Replaces(name, version)
		}
		open[mp.Source.Path] = f.cache.objectPath(p.archive.SHA256)
		for _, bp := range p.blobs {
			obj := bp.obj
			if objOf != nil {
				obj = objOf(bp)
			}
			b := manifest.Blob{
				Name:    bp.name,
				Size:    obj.Size,
				SHA256:  obj.SHA256,
				Release: bp.release,
				Origin:  bp.origin,
			}
			if bp.asset != nil {
				b.URL = bp.asset.BrowserDownloadURL
				if b.URL == "" {
					b.URL = bp.asset.URL
				}
				b.Digest = bp.asset.Digest
			}
			if bp.have {
				mp.Required = append(mp.Required, b)
				continue
			}
			b.Path = manifest.BlobPath(name, bp.name)
			if prev, ok := carried[b.Path]; ok && (prev.SHA256 != b.SHA256 || prev.Size != b.Size) {
				return nil, nil, fmt.Errorf("fetch: blob %s of project %s differs between the versions fetched (%s from %s, %s from %s); fetch them into separate bundles",
					bp.name, name, prev.SHA256, originText(prev), b.SHA256, originText(b))
			}
			carried[b.Path] = b
			open[b.Path] = f.cache.objectPath(obj.SHA256)
			mp.Blobs = append(mp.Blobs, b)
		}
		m.Projects = append(m.Projects, mp)
	}
	if err := m.Validate(); err != nil {
		return nil, nil, fmt.Errorf("fetch: manifest: %w", err)
	}
	files := m.Files()
	entries := make([]manifest.Entry, 0, len(files))
	for _, fl := range files {
		obj := open[fl.Path]
		entries = append(entries, manifest.Entry{
			Path:   fl.Path,
			Size:   fl.Size,
			SHA256: fl.SHA256,
			Mode:   0o644,
			Open:   func() (io.ReadCloser, error) { return os.Open(obj) },
			// Never Verified: size and mtime can be put back on changed
			// bytes, so every byte is hashed on its way into the bundle
			// and checked against the sum it is signed under.
			Verified: false,
		})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return m, entries, nil
}

func originText(b manifest.Blob) string {
	if b.Release != "" {
		return "release " + b.Release
	}
	return b.Origin
}
