package syncjob

import (
	"context"
	"fmt"
	"sync"

	"github.com/ccmirror/ccmirror/mirror"
)

// lookupConcurrency bounds the GitHub lookups (release lists, tags) of one
// run under way at once: enough for a dozen policies in one round trip,
// well under what GitHub asks clients to keep below (100).
// fetchConcurrency bounds its fetches under way at once; the downloads of
// all those fetches share the Fetcher's Concurrency slots.
const (
	lookupConcurrency = 16
	fetchConcurrency  = 8
)

// target is one release a run must have mirrored.
type target struct {
	proj     *Project
	rel      *mirror.Release
	policies []string
}

// lookup is what one GitHub lookup of a run found.
type lookup struct {
	rel *mirror.Release
	err error
}

// projectLookups are the lookups of one project: its release list (when
// a newest:N policy asks for it) and the release of each policy.
type projectLookups struct {
	listDone chan struct{} // closed when list and listErr are set
	list     []mirror.Release
	listErr  error
	pol      []lookup // by policy; unused for newest:N
}

// resolve turns every project's policies into releases, each release once,
// in the order of the config. The lookups run concurrently
// (lookupConcurrency at a time); what they found is then taken in order, so
// the targets, failures and log lines do not depend on which answered
// first.
func (r *run) resolve(ctx context.Context) []*target {
	looks := r.lookups(ctx)
	var out []*target
	for i := range r.cfg.Projects {
		p := &r.cfg.Projects[i]
		pl := looks[i]
		byTag := map[string]*target{}
		add := func(rel *mirror.Release, pol string) {
			if t := byTag[rel.Tag]; t != nil {
				t.policies = append(t.policies, pol)
				return
			}
			t := &target{proj: p, rel: rel, policies: []string{pol}}
			byTag[rel.Tag] = t
			out = append(out, t)
		}
		for j, pol := range p.Versions {
			if ctx.Err() != nil {
				return out
			}
			repo := p.Ref.Repository()
			failed := func(err error) {
				r.fail(Failure{Repository: repo, Policy: pol.String(), Error: err.Error()},
					fmt.Errorf("sync %s %s: %w", repo, pol, err))
			}
			switch pol.Kind {
			case Pinned, Latest:
				if err := pl.pol[j].err; err != nil {
					failed(err)
					continue
				}
				if pol.Kind == Latest {
					r.log.Debug("resolved", "repository", repo, "policy", pol.String(), "tag", pl.pol[j].rel.Tag)
				}
				add(pl.pol[j].rel, pol.String())
			case Newest:
				if pl.listErr != nil {
					failed(pl.listErr)
					continue
				}
				sel := NewestReleases(pl.list, pol.N)
				if len(sel) == 0 {
					failed(mirror.NoVersionError(repo, pl.list))
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

// lookups asks GitHub what every policy of every project names, all at
// once (lookupConcurrency at a time), and waits for the answers. A project
// with a newest:N policy has its releases listed once; a pinned tag after
// such a policy is taken from that list when it is there.
func (r *run) lookups(ctx context.Context) []*projectLookups {
	sem := make(chan struct{}, lookupConcurrency)
	var wg sync.WaitGroup
	// do runs f in a slot; a cancelled run does not start it.
	do := func(f func() error, fail func(error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				fail(ctx.Err())
				return
			}
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				fail(err)
				return
			}
			if err := f(); err != nil {
				fail(err)
			}
		}()
	}
	out := make([]*projectLookups, len(r.cfg.Projects))
	for i := range r.cfg.Projects {
		p := &r.cfg.Projects[i]
		pl := &projectLookups{listDone: make(chan struct{}), pol: make([]lookup, len(p.Versions))}
		out[i] = pl
		listing := false
		for _, pol := range p.Versions {
			listing = listing || pol.Kind == Newest
		}
		if listing {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(pl.listDone)
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					pl.listErr = ctx.Err()
					return
				}
				defer func() { <-sem }()
				pl.list, pl.listErr = r.f.Releases(ctx, p.Ref.Owner, p.Ref.Repo)
			}()
		} else {
			close(pl.listDone)
		}
		listed := false // a newest:N policy comes before this one
		for j, pol := range p.Versions {
			res := &pl.pol[j]
			switch pol.Kind {
			case Newest:
				listed = true
			case Pinned:
				fromList := listed
				ref := mirror.Ref{Owner: p.Ref.Owner, Repo: p.Ref.Repo, Version: pol.Tag}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if fromList {
						// Wait for the list outside a slot: the lister
						// may still need one.
						<-pl.listDone
						if pl.listErr == nil {
							if rel := findTag(pl.list, pol.Tag); rel != nil {
								res.rel = rel
								return
							}
						}
					}
					do(func() error {
						var err error
						res.rel, err = r.f.Resolve(ctx, ref)
						return err
					}, func(err error) { res.err = err })
				}()
			case Latest:
				ref := mirror.Ref{Owner: p.Ref.Owner, Repo: p.Ref.Repo}
				do(func() error {
					var err error
					res.rel, err = r.f.Resolve(ctx, ref)
					return err
				}, func(err error) { res.err = err })
			}
		}
	}
	wg.Wait()
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

// NewestReleases returns the n highest versions among rels
// (mirror.NewestReleases: prereleases count, drafts and dated tags do not).
func NewestReleases(rels []mirror.Release, n int) []mirror.Release {
	return mirror.NewestReleases(rels, n)
}
