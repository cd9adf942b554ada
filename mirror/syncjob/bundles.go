package syncjob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/transport/split"
)

// mirror makes sure one release is mirrored as GitHub holds it now.
func (r *run) mirror(ctx context.Context, t *target) {
	repo, tag := t.proj.Ref.Repository(), t.rel.Tag
	prints := AssetsOf(t.rel)
	fp := Fingerprint(prints)
	prev := r.ix.Latest(repo, tag)
	if prev != nil && prev.Fingerprint == fp {
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
	b, err := r.fetch(ctx, t, rev)
	if err != nil {
		r.fail(Failure{Repository: repo, Policy: strings.Join(t.policies, ","), Tag: tag, Error: err.Error()}, err)
		return
	}
	if change != nil {
		change.File = b.File
	}
	r.sum.New = append(r.sum.New, *b)
}

// fetch writes the bundle of one release as revision rev (or the next free
// one), records it in the index and saves the index.
func (r *run) fetch(ctx context.Context, t *target, rev int) (*Bundle, error) {
	repo, tag := t.proj.Ref.Repository(), t.rel.Tag
	label := "sync " + repo + "@" + tag
	tmp, err := tempName(r.cfg.Output)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	ref := mirror.Ref{Owner: t.proj.Ref.Owner, Repo: t.proj.Ref.Repo, Version: tag}
	res, err := r.f.Fetch(ctx, []mirror.Ref{ref}, tmp)
	if res != nil {
		r.sum.Downloaded += res.Downloaded
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("%s: %w", label, err)
	}
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
	final := filepath.Join(r.cfg.Output, name)
	sha, size, err := ctxio.HashFile(ctx, final)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
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
