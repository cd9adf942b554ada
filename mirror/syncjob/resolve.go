package syncjob

import (
	"context"
	"fmt"
	"sort"

	"github.com/ccmirror/ccmirror/mirror"
)

// target is one release a run must have mirrored.
type target struct {
	proj     *Project
	rel      *mirror.Release
	policies []string
}

// resolve turns every project's policies into releases, each release once.
func (r *run) resolve(ctx context.Context) []*target {
	var out []*target
	for i := range r.cfg.Projects {
		p := &r.cfg.Projects[i]
		byTag := map[string]*target{}
		var list []mirror.Release
		listed := false
		add := func(rel *mirror.Release, pol string) {
			if t := byTag[rel.Tag]; t != nil {
				t.policies = append(t.policies, pol)
				return
			}
			t := &target{proj: p, rel: rel, policies: []string{pol}}
			byTag[rel.Tag] = t
			out = append(out, t)
		}
		for _, pol := range p.Versions {
			if ctx.Err() != nil {
				return out
			}
			repo := p.Ref.Repository()
			failed := func(err error) {
				r.fail(Failure{Repository: repo, Policy: pol.String(), Error: err.Error()},
					fmt.Errorf("sync %s %s: %w", repo, pol, err))
			}
			switch pol.Kind {
			case Pinned:
				if rel := findTag(list, pol.Tag); rel != nil {
					add(rel, pol.String())
					continue
				}
				rel, err := r.f.Resolve(ctx, mirror.Ref{Owner: p.Ref.Owner, Repo: p.Ref.Repo, Version: pol.Tag})
				if err != nil {
					failed(err)
					continue
				}
				add(rel, pol.String())
			case Latest:
				rel, err := r.f.Resolve(ctx, mirror.Ref{Owner: p.Ref.Owner, Repo: p.Ref.Repo})
				if err != nil {
					failed(err)
					continue
				}
				r.log.Debug("resolved", "repository", repo, "policy", pol.String(), "tag", rel.Tag)
				add(rel, pol.String())
			case Newest:
				if !listed {
					var err error
					if list, err = r.f.Releases(ctx, p.Ref.Owner, p.Ref.Repo); err != nil {
						failed(err)
						continue
					}
					listed = true
				}
				sel := NewestReleases(list, pol.N)
				if len(sel) == 0 {
					failed(fmt.Errorf("%s has no published release (drafts and prereleases do not count): %w", repo, mirror.ErrUpstream))
					continue
				}
				if len(sel) < pol.N {
					r.log.Info("fewer releases than asked for", "repository", repo, "policy", pol.String(), "releases", len(sel))
				}
				for j := range sel {
					add(&sel[j], pol.String())
				}
			}
		}
	}
	return out
}

func findTag(rels []mirror.Release, tag string) *mirror.Release {
	for i := range rels {
		if rels[i].Tag == tag && !rels[i].Draft {
			return &rels[i]
		}
	}
	return nil
}

// NewestReleases returns the n newest releases that are neither drafts nor
// prereleases, by publication time, newest first.
func NewestReleases(rels []mirror.Release, n int) []mirror.Release {
	var c []mirror.Release
	for _, rel := range rels {
		if !rel.Draft && !rel.Prerelease && rel.Tag != "" {
			c = append(c, rel)
		}
	}
	sort.SliceStable(c, func(i, j int) bool { return c[i].PublishedAt.After(c[j].PublishedAt) })
	if len(c) > n {
		c = c[:n]
	}
	return c
}
