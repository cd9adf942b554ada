package mirror

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ccmirror/ccmirror/manifest"
)

// blobPlan is one blob of a project: where it comes from and, once
// obtained, its content in the cache.
type blobPlan struct {
	name    string // path under blobs/
	origin  string // "source", "release", "blob-dir"
	release string // tag of the release it comes from (origin release)
	asset   *Asset // origin release
	file    string // origin blob-dir: the file
	obj     object // content, once obtained
	have    bool   // the target server holds it: list under Required
}

// assetByName finds an uploaded asset named name (or, for a blob in a
// sub-folder of blobs/, its base name).
func assetByName(rel *Release, name string) *Asset {
	base := path.Base(name)
	var byBase *Asset
	for i := range rel.Assets {
		a := &rel.Assets[i]
		if a.State != "" && a.State != "uploaded" {
			continue
		}
		if a.Name == name {
			return a
		}
		if a.Name == base && byBase == nil {
			byBase = a
		}
	}
	return byBase
}

// locate decides where each blob comes from, in the spec's order: the
// tag's source tree, the release's assets, other releases' assets (newest
// first), the blob dirs. Every asset of the release is carried too.
func (r *fetchRun) locate(ctx context.Context, p *projectPlan, scan *sourceScan) error {
	f := r.f
	if f.o.Have == nil {
		// Every uploaded asset the source tree's blobs/ does not shadow
		// is carried whatever project.ini says: start downloading them
		// now, while the blobs it names are looked for elsewhere.
		for i := range p.rel.Assets {
			a := &p.rel.Assets[i]
			if (a.State != "" && a.State != "uploaded") || scan.blobs[a.Name] || !manifest.ValidBlobName(a.Name) {
				continue
			}
			r.pool.start(r.assetRequest(p, &blobPlan{name: a.Name, origin: "release", release: p.rel.Tag, asset: a}))
		}
	}
	usedAsset := map[int64]bool{}
	names := map[string]bool{}
	fromSource := map[string]bool{}
	var others []Release
	othersListed := false
	defer func() {
		// Remember for the next fetch of the tag whether the other
		// releases had to be listed (listEarly). A "latest" ref lists
		// them anyway: no hint.
		if p.ref.IsLatest() {
			return
		}
		key := othersKey(Ref{Owner: p.ref.Owner, Repo: p.ref.Repo, Version: p.rel.Tag})
		switch had := f.cache.hint(key); {
		case othersListed && !had:
			if err := f.cache.recordHint(key); err != nil {
				f.log.Debug("cache: hint not recorded", "key", key, "error", err.Error())
			}
		case !othersListed && had:
			f.cache.dropHint(key)
		}
	}()
	for _, name := range p.ini.Blobs {
		if !manifest.ValidBlobName(name) {
			return fmt.Errorf("%s: project.ini names unsafe blob %q: %w", p.label(), name, manifest.ErrVerify)
		}
		names[name] = true
		bp := &blobPlan{name: name}
		switch {
		case scan.blobs[name]:
			bp.origin = "source"
			fromSource[name] = true
		case assetByName(p.rel, name) != nil:
			bp.origin, bp.release, bp.asset = "release", p.rel.Tag, assetByName(p.rel, name)
		default:
			if !othersListed {
				othersListed = true
				all, err := r.allReleases(ctx, p.ref.Owner, p.ref.Repo)
				if err != nil {
					return fmt.Errorf("%s: %w", p.label(), err)
				}
				for _, o := range all {
					if o.ID != p.rel.ID && o.Tag != p.rel.Tag && !o.Draft {
						others = append(others, o)
					}
				}
			}
			for i := range others {
				if a := assetByName(&others[i], name); a != nil {
					bp.origin, bp.release, bp.asset = "release", others[i].Tag, a
					f.log.Info("blob found on another release", "project", p.ini.Name, "blob", name, "release", others[i].Tag)
					break
				}
			}
			if bp.asset == nil {
				for _, d := range f.o.BlobDirs {
					if file, ok := findInDir(d, name); ok {
						bp.origin, bp.file = "blob-dir", file
						break
					}
				}
			}
		}
		if bp.origin == "" {
			p.missing = append(p.missing, name)
			continue
		}
		if bp.asset != nil {
			usedAsset[bp.asset.ID] = true
		}
		p.blobs = append(p.blobs, bp)
	}
	// Everything the manual procedure would put into blobs/ travels too,
	// listed or not: the files committed under the source tree's blobs/
	// and every asset of the release.
	var unlisted []string
	for name := range scan.blobs {
		if !names[name] {
			unlisted = append(unlisted, name)
		}
	}
	sort.Strings(unlisted)
	for _, name := range unlisted {
		names[name] = true
		fromSource[name] = true
		p.blobs = append(p.blobs, &blobPlan{name: name, origin: "source"})
	}
	for i := range p.rel.Assets {
		a := &p.rel.Assets[i]
		if usedAsset[a.ID] || (a.State != "" && a.State != "uploaded") {
			continue
		}
		if names[a.Name] {
			if fromSource[a.Name] {
				f.log.Debug("asset shadowed by the source tree's blobs/", "project", p.ini.Name, "asset", a.Name)
			}
			continue
		}
		if !manifest.ValidBlobName(a.Name) {
			r.warn("release asset with an unusable name not carried", "repository", p.ref.Repository(), "tag", p.rel.Tag, "asset", a.Name)
			continue
		}
		names[a.Name] = true
		p.blobs = append(p.blobs, &blobPlan{name: a.Name, origin: "release", release: p.rel.Tag, asset: a})
	}
	if len(fromSource) > 0 {
		objs, err := extractBlobs(ctx, f.cache, f.cache.objectPath(p.archive.SHA256), scan.top, fromSource)
		if err != nil {
			return fmt.Errorf("%s: %w", p.label(), err)
		}
		for _, bp := range p.blobs {
			if bp.origin == "source" {
				bp.obj = objs[bp.name]
			}
		}
	}
	if len(p.missing) > 0 {
		p.looked = []string{fmt.Sprintf("the source tree's blobs/ at tag %s", p.rel.Tag), fmt.Sprintf("the assets of release %s", p.rel.Tag)}
		if len(others) == 0 {
			p.looked = append(p.looked, fmt.Sprintf("no other release of %s", p.ref.Repository()))
		} else {
			tags := make([]string, len(others))
			for i, o := range others {
				tags[i] = o.Tag
			}
			p.looked = append(p.looked, fmt.Sprintf("the assets of %d other release(s) of %s (%s)", len(others), p.ref.Repository(), strings.Join(tags, ", ")))
		}
		if len(f.o.BlobDirs) == 0 {
			p.looked = append(p.looked, "no --blob-dir given")
		} else {
			p.looked = append(p.looked, "--blob-dir "+strings.Join(f.o.BlobDirs, ", "))
		}
	}
	return nil
}

// findInDir looks for a blob as dir/name, then dir/base(name).
func findInDir(dir, name string) (string, bool) {
	for _, c := range []string{filepath.Join(dir, filepath.FromSlash(name)), filepath.Join(dir, path.Base(name))} {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c, true
		}
	}
	return "", false
}

// missingError names every blob found nowhere, per project, and where it
// was looked for.
func missingError(plans []*projectPlan) error {
	var msgs []string
	for _, p := range plans {
		if len(p.missing) == 0 {
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s: %d blob(s) not found: %s (looked in %s)",
			p.label(), len(p.missing), strings.Join(p.missing, ", "), strings.Join(p.looked, "; ")))
	}
	if len(msgs) == 0 {
		return nil
	}
	return upstreamf("%s", strings.Join(msgs, "\n"))
}
