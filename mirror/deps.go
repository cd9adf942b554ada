package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/scan"
	"golang.org/x/sync/errgroup"
)

// LeftOut is a project the cluster templates of a fetched release include
// ([[[cluster-init cyclecloud/NAME:SPEC[:VERSION]]]]) that the bundle does
// not carry.
type LeftOut struct {
	// Project is the name the template gives ("healthagent").
	Project string `json:"project"`
	// Version is the version the template gives, "" for none (the latest).
	Version string `json:"version,omitempty"`
	// By names the project versions whose templates include it
	// ("slurm 4.0.9").
	By []string `json:"by"`
	// Reason says why Options.WithDeps could not add it; "" when it was
	// not asked to.
	Reason string `json:"reason,omitempty"`
}

// String is the dependency as a ref would name it: "monitoring@1.0.3",
// "healthagent".
func (l LeftOut) String() string {
	if l.Version == "" {
		return l.Project
	}
	return l.Project + "@" + l.Version
}

// depRef maps a template dependency to the ref that fetches it: a known
// short name stands for Azure/cyclecloud-NAME as in ParseRef; the version
// the template gives, else the latest (RankReleases).
func depRef(d scan.Dependency) (Ref, error) {
	k := strings.TrimPrefix(strings.ToLower(d.Project), "cyclecloud-")
	if !isKnown(k) {
		return Ref{}, errors.New("no repository known for it")
	}
	r := Ref{Owner: "Azure", Repo: "cyclecloud-" + k}
	if d.Version != "" {
		if err := checkVersion(d.Version); err != nil {
			return Ref{}, err
		}
		r.Version = normVersion(d.Version)
	}
	return r, nil
}

// coverage is which repositories and versions a fetch carries (or is
// about to): what makes a dependency already present. A dependency
// without a version is met by any version of its repository.
type coverage map[string]map[string]bool // lower-case OWNER/REPO -> versions ("" for a pending latest)

func (c coverage) add(repo string, versions ...string) {
	k := strings.ToLower(repo)
	if c[k] == nil {
		c[k] = map[string]bool{}
	}
	for _, v := range versions {
		c[k][strings.TrimPrefix(v, "v")] = true
	}
}

func (c coverage) has(r Ref) bool {
	vs := c[strings.ToLower(r.Repository())]
	if r.IsLatest() {
		return len(vs) > 0
	}
	return vs[strings.TrimPrefix(r.Version, "v")]
}

// resolveAll is phase 1 for every ref and, with Options.WithDeps, every
// project their templates include, transitively: wave by wave, a
// dependency not yet covered (by repository and version) is resolved
// once, so a cycle of templates ends. It returns the plans, deduplicated,
// and the dependencies the bundle leaves out.
func (r *fetchRun) resolveAll(ctx context.Context, refs []Ref) ([]*projectPlan, []LeftOut, error) {
	cov := coverage{}
	wave := make([]*projectPlan, len(refs)) // only ref and by set
	for i, ref := range refs {
		cov.add(ref.Repository(), ref.Version)
		wave[i] = &projectPlan{ref: ref}
	}
	var all []*projectPlan
	for len(wave) > 0 {
		plans := make([]*projectPlan, len(wave))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.f.o.Concurrency)
		for i, w := range wave {
			g.Go(func() error {
				p, err := r.resolve(gctx, w.ref)
				if p != nil {
					p.by = w.by
				}
				plans[i] = p
				if err != nil && w.by != nil {
					err = fmt.Errorf("%w (included by the cluster templates of %s; --with-deps)", err, w.by.title())
				}
				return err
			})
		}
		err := g.Wait()
		for _, p := range plans {
			if p != nil {
				all = append(all, p)
			}
		}
		if err != nil {
			return all, nil, ctxErr(ctx, err)
		}
		for _, p := range plans {
			cov.add(p.ref.Repository(), p.rel.Tag, p.ini.Version)
		}
		wave = nil
		if !r.f.o.WithDeps {
			break
		}
		for _, p := range plans {
			for _, d := range p.tree.Dependencies {
				ref, err := depRef(d)
				if err != nil || cov.has(ref) {
					continue
				}
				cov.add(ref.Repository(), ref.Version)
				r.f.log.Info("adding a dependency", "project", d.Project, "version", d.Version, "included_by", p.title())
				wave = append(wave, &projectPlan{ref: ref, by: p})
			}
		}
	}
	plans, err := r.dedupe(all)
	if err != nil {
		return nil, nil, err
	}
	return plans, leftOut(plans, cov), nil
}

// title names a resolved project version as messages do: "slurm 4.0.9".
func (p *projectPlan) title() string { return p.ini.Name + " " + p.ini.Version }

// leftOut lists the dependencies of plans that cov does not cover, each
// once, with who includes it.
func leftOut(plans []*projectPlan, cov coverage) []LeftOut {
	var out []LeftOut
	at := map[string]int{}
	for _, p := range plans {
		for _, d := range p.tree.Dependencies {
			l := LeftOut{Project: d.Project, Version: d.Version}
			ref, err := depRef(d)
			switch {
			case err != nil:
				l.Reason = err.Error()
			case cov.has(ref):
				continue
			}
			k := l.String()
			i, ok := at[k]
			if !ok {
				i = len(out)
				at[k] = i
				out = append(out, l)
			}
			if by := p.title(); !contains(out[i].By, by) {
				out[i].By = append(out[i].By, by)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scanSource scans a cached tag archive for what its nodes reach and the
// projects its templates include.
func scanSource(ctx context.Context, file string, ini *manifest.ProjectINI) (*scan.Project, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	t, err := scan.ScanTree(ctx, ini.Name, ini.Version, scan.TagArchive(fh), scan.Limits{})
	if err != nil {
		return nil, fmt.Errorf("source archive: %w", err)
	}
	return t, nil
}

// readiness scans what the bundle carries for the readiness summary: each
// project's source tree (scanned in phase 1) and the archives among its
// carried blobs, read from the cache files the bundle was just written
// from. This is a second read of those archives only, bounded by
// scan.DefaultLimits; other blobs and the bundle itself are not read
// again.
func (r *fetchRun) readiness(ctx context.Context, plans []*projectPlan) (*scan.Report, error) {
	carried := scan.Carried{}
	for _, p := range plans {
		for _, bp := range p.blobs {
			if !bp.have {
				carried[p.ini.Name] = append(carried[p.ini.Name], bp.name)
			}
		}
	}
	rep := &scan.Report{}
	for _, p := range plans {
		var archives []*scan.ArchiveScan
		var required []string
		for _, bp := range p.blobs {
			if bp.have {
				required = append(required, bp.name)
				continue
			}
			if !scan.IsArchive(bp.name) {
				continue
			}
			as, err := scanCached(ctx, r.f.cache.objectPath(bp.obj.SHA256), bp.name, bp.obj.Size)
			if err != nil {
				return nil, fmt.Errorf("%s: blob %s: %w", p.title(), bp.name, err)
			}
			archives = append(archives, as)
		}
		rep.Projects = append(rep.Projects, scan.Join(p.tree, archives, required, carried, scan.Limits{}))
	}
	return rep, nil
}

func scanCached(ctx context.Context, file, name string, size int64) (*scan.ArchiveScan, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return scan.ScanArchive(ctx, name, fh, size, scan.Limits{})
}
