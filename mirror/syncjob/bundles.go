package syncjob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/transport/split"
)

// fetched is the download of one target's bundle, started ahead of its
// turn.
type fetched struct {
	done chan struct{} // closed when tmp, res and err are set
	tmp  string        // the bundle written, "" on failure
	res  *mirror.Result
	sha  string // tmp's sha256 and size, hashed as soon as it was written
	size int64
	err  error
	used bool // taken by mirror; otherwise the cleanup removes tmp
}

// upToDate says whether the index holds t's release as GitHub holds it now.
func (r *run) upToDate(t *target) bool {
	prev := r.ix.Latest(t.proj.Ref.Repository(), t.rel.Tag)
	return prev != nil && prev.Fingerprint == Fingerprint(AssetsOf(t.rel))
}

// mirrorAll makes sure every target is mirrored. The bundles of targets
// not up to date are fetched concurrently, fetchConcurrency at a time
// and started in order, their downloads sharing the Fetcher's slots; each
// is hashed as its download ends, then placed and recorded in target order, so names,
// revisions, the index and the summary are what a one-by-one run makes.
func (r *run) mirrorAll(ctx context.Context, targets []*target) {
	pending := make([]*fetched, len(targets))
	for i, t := range targets {
		if !r.upToDate(t) {
			pending[i] = &fetched{done: make(chan struct{})}
		}
	}
	sem := make(chan struct{}, fetchConcurrency)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the feeder: starts the fetches in order
		defer wg.Done()
		for i, fe := range pending {
			if fe == nil {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				fe.err = fmt.Errorf("%s: %w", fetchLabel(targets[i]), ctx.Err())
				close(fe.done)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				defer close(fe.done)
				r.download(ctx, targets[i], fe)
			}()
		}
	}()
	defer func() {
		wg.Wait()
		for _, fe := range pending {
			if fe != nil && !fe.used {
				r.discard(fe)
			}
		}
	}()
	for i, t := range targets {
		if ctx.Err() != nil {
			break
		}
		r.mirror(ctx, t, pending[i])
	}
}

// discard drops a fetch no target uses, counting what it downloaded.
func (r *run) discard(fe *fetched) {
	fe.used = true
	if fe.res != nil {
		r.sum.Downloaded += fe.res.Downloaded
	}
	if fe.tmp != "" {
		os.Remove(fe.tmp)
	}
}

// mirror makes sure one release is mirrored as GitHub holds it now; fe is
// its bundle's fetch started ahead, or nil.
func (r *run) mirror(ctx context.Context, t *target, fe *fetched) {
	repo, tag := t.proj.Ref.Repository(), t.rel.Tag
	prints := AssetsOf(t.rel)
	fp := Fingerprint(prints)
	prev := r.ix.Latest(repo, tag)
	if prev != nil && prev.Fingerprint == fp {
		if fe != nil {
			// An earlier target of this run mirrored the same release.
			<-fe.done
			r.discard(fe)
		}
		r.log.Info("up to date", "repository", repo, "tag", tag, "bundle", prev.File)
		r.sum.Unchanged = append(r.sum.Unchanged, Version{
			Project: prev.Project, Version: prev.Version, Repository: repo, Tag: tag, File: prev.File, Policies: t.policies,
		})
		return
	}
	rev := 1
	var change *Change
	if prev != nil {
		rev = prev.Revision + 1
		diff := DiffAssets(prev.Assets, prints)
		msg := fmt.Sprintf("release %s@%s changed on GitHub after it was mirrored: assets %s differ", repo, tag, strings.Join(diff, ", "))
		if len(diff) == 0 {
			msg = fmt.Sprintf("release %s@%s changed on GitHub after it was mirrored: its asset list differs", repo, tag)
		}
		r.log.Warn(msg+"; keeping "+prev.File+" and writing a new bundle", "repository", repo, "tag", tag, "previous", prev.File)
		r.sum.Changed = append(r.sum.Changed, Change{Repository: repo, Tag: tag, Assets: nonNil(diff), Previous: prev.File, Message: msg})
		change = &r.sum.Changed[len(r.sum.Changed)-1]
	}
	if fe == nil {
		fe = &fetched{}
		r.download(ctx, t, fe)
	} else {
		select {
		case <-fe.done:
		case <-ctx.Done():
			return // the cleanup waits for it and removes its file
		}
	}
	fe.used = true
	if fe.res != nil {
		r.sum.Downloaded += fe.res.Downloaded
	}
	b, err := r.fetch(ctx, t, rev, fe)
	if err != nil {
		r.fail(Failure{Repository: repo, Policy: strings.Join(t.policies, ","), Tag: tag, Error: err.Error()}, err)
		return
	}
	if change != nil {
		change.File = b.File
	}
	r.sum.New = append(r.sum.New, *b)
}

// fetchLabel names t in errors.
func fetchLabel(t *target) string {
	return "sync " + t.proj.Ref.Repository() + "@" + t.rel.Tag
}

// download fetches the bundle of t's release into a temporary file of the
// output folder and hashes it there, while other targets still download,
// setting fe's tmp, res, sha and size, or its err. On failure no file is
// left.
func (r *run) download(ctx context.Context, t *target, fe *fetched) {
	label := fetchLabel(t)
	tmp, err := tempName(r.cfg.Output)
	if err != nil {
		fe.err = fmt.Errorf("%s: %w", label, err)
		return
	}
	ref := mirror.Ref{Owner: t.proj.Ref.Owner, Repo: t.proj.Ref.Repo, Version: t.rel.Tag}
	fe.res, err = r.f.Fetch(ctx, []mirror.Ref{ref}, tmp)
	if err == nil {
		fe.sha, fe.size, err = ctxio.HashFile(ctx, tmp)
	}
	if err != nil {
		os.Remove(tmp)
		fe.err = fmt.Errorf("%s: %w", label, err)
		return
	}
	fe.tmp = tmp
}

// fetch places the bundle fe fetched for one release as revision rev (or
// the next free one), records it in the index and saves the index.
func (r *run) fetch(ctx context.Context, t *target, rev int, fe *fetched) (*Bundle, error) {
	repo, tag := t.proj.Ref.Repository(), t.rel.Tag
	label := fetchLabel(t)
	if fe.err != nil {
		return nil, fe.err
	}
	tmp, res := fe.tmp, fe.res
	defer os.Remove(tmp) // gone already once placed
	for _, w := range res.Warnings {
		r.log.Warn("fetch warning", "repository", repo, "tag", tag, "warning", w)
	}
	if len(res.Manifest.Projects) != 1 || res.Manifest.Projects[0].Tag != tag {
		return nil, fmt.Errorf("%s: the bundle holds something else than release %s", label, tag)
	}
	mp := res.Manifest.Projects[0]
	name, rev, err := r.place(tmp, mp.Name, mp.Version, rev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	// The sync lock keeps every other writer out of the output folder:
	// the file placed is the one hashed when its download ended.
	final := filepath.Join(r.cfg.Output, name)
	sha, size := fe.sha, fe.size
	var parts string
	if r.o.SplitSize > 0 {
		l, err := split.Split(ctx, final, "", r.o.SplitSize, r.signer)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		parts = filepath.Join(r.cfg.Output, split.ListName(l.Bundle))
	}
	prints := AssetsOf(t.rel)
	r.ix.Bundles = append(r.ix.Bundles, Entry{
		Project:     mp.Name,
		Version:     mp.Version,
		Repository:  repo,
		Tag:         tag,
		Commit:      mp.Commit,
		File:        name,
		Size:        size,
		SHA256:      sha,
		Created:     res.Manifest.Created,
		Revision:    rev,
		Fingerprint: Fingerprint(prints),
		Assets:      prints,
	})
	if err := r.saveIndex(); err != nil {
		// Keep the index in memory consistent with the one on disk.
		r.ix.Bundles = r.ix.Bundles[:len(r.ix.Bundles)-1]
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	r.log.Info("new bundle", "project", mp.Name, "version", mp.Version, "repository", repo, "tag", tag,
		"file", name, "size", size, "revision", rev, "downloaded", res.Downloaded)
	return &Bundle{
		Project: mp.Name, Version: mp.Version, Repository: repo, Tag: tag, Commit: mp.Commit,
		File: name, Path: final, Size: size, SHA256: sha, Revision: rev, Policies: t.policies,
		Downloaded: res.Downloaded, Parts: parts,
	}, nil
}

// tempName returns an unused name in dir for a bundle being fetched.
func tempName(dir string) (string, error) {
	f, err := os.CreateTemp(dir, ".ccmirror-sync-*.tar")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, nil
}

// place moves the fetched bundle tmp to its final name: revision rev, or
// the next one free in both the index and the folder. An existing file is
// never overwritten.
func (r *run) place(tmp, project, version string, rev int) (string, int, error) {
	for ; rev < 10000; rev++ {
		name := BundleName(project, version, rev)
		if r.ix.HasFile(name) {
			continue
		}
		final := filepath.Join(r.cfg.Output, name)
		err := os.Link(tmp, final)
		if err == nil {
			os.Remove(tmp)
			return name, rev, nil
		}
		if errors.Is(err, fs.ErrExist) {
			r.log.Warn("a file not listed in index.json has the bundle's name; leaving it alone", "file", final)
			continue
		}
		// No hard links on this file system: the lock keeps other syncs
		// out, so check and rename.
		if _, serr := os.Lstat(final); serr == nil {
			r.log.Warn("a file not listed in index.json has the bundle's name; leaving it alone", "file", final)
			continue
		}
		if err := os.Rename(tmp, final); err != nil {
			return "", 0, err
		}
		return name, rev, nil
	}
	return "", 0, fmt.Errorf("no free bundle name for %s %s", project, version)
}

// sweep removes what an interrupted run left: bundles being fetched and
// index files being written. It runs under the lock, so none is in use.
func (r *run) sweep() {
	for _, pat := range []string{".ccmirror-sync-*.tar*", atomicfile.TempPrefix(IndexName) + "*", atomicfile.TempPrefix(IndexSigName) + "*", atomicfile.TempPrefix(SequenceName) + "*"} {
		m, _ := filepath.Glob(filepath.Join(r.cfg.Output, pat))
		for _, f := range m {
			if err := os.Remove(f); err == nil {
				r.log.Debug("removed a leftover of an interrupted run", "file", f)
			}
		}
	}
}
