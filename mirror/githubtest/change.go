package githubtest

import (
	"fmt"
	"strings"
	"time"
)

// ReplaceAsset changes the bytes of one asset of a release, as deleting
// and re-uploading it on GitHub would: the asset gets a new id, size,
// digest and updated_at. An asset name the release does not have is
// added (an asset not named in project.ini).
func (s *Server) ReplaceAsset(repo, tag, name string, content []byte) error {
	if name == "" || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("githubtest: replace asset %q: bad asset name", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.lookupRepo(repo)
	if rp == nil {
		return fmt.Errorf("githubtest: replace asset %s@%s/%s: no such repository", repo, tag, name)
	}
	var rel *release
	for _, r := range rp.releases {
		if r.tag == tag {
			rel = r
		}
	}
	if rel == nil {
		return fmt.Errorf("githubtest: replace asset %s@%s/%s: no such release", repo, tag, name)
	}
	data := append([]byte{}, content...)
	now := time.Now().UTC().Truncate(time.Second)
	na := &asset{
		id:      s.newAssetID(),
		name:    name,
		size:    int64(len(data)),
		content: data,
		sum:     sha256Hex(data),
		created: now,
		updated: now,
	}
	assets := make([]*asset, 0, len(rel.assets)+1)
	replaced := false
	for _, a := range rel.assets {
		if a.name == name {
			assets = append(assets, na)
			replaced = true
			continue
		}
		assets = append(assets, a)
	}
	if !replaced {
		assets = append(assets, na)
	}
	rel.assets = assets
	return nil
}

// AddRelease publishes a new release tag of repo copied from release
// `from`: same tree, project.ini with the version rewritten to the new tag
// (blob names carrying the old version follow it), a new commit id, and
// published after every existing release so it becomes the latest.
func (s *Server) AddRelease(repo, tag, from string) error {
	if tag == "" || strings.ContainsAny(tag, " \t\n/\\?#") {
		return fmt.Errorf("githubtest: add release %q: bad tag", tag)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.lookupRepo(repo)
	if rp == nil {
		return fmt.Errorf("githubtest: add release %s@%s: no such repository", repo, tag)
	}
	var src *release
	var newest time.Time
	for _, r := range rp.releases {
		if r.tag == tag {
			return fmt.Errorf("githubtest: add release %s@%s: tag exists", repo, tag)
		}
		if r.tag == from {
			src = r
		}
		if r.published.After(newest) {
			newest = r.published
		}
	}
	if src == nil {
		return fmt.Errorf("githubtest: add release %s@%s: no release %q to copy", repo, tag, from)
	}
	rel := &release{
		repo:       rp,
		id:         s.newReleaseID(),
		tag:        tag,
		commit:     fakeCommit(rp.full(), tag, src.commit),
		published:  newest.Add(24 * time.Hour),
		projectINI: retag(src.projectINI, src.tag, tag),
		tree:       src.tree,
	}
	rel.commitTime = rel.published.Add(-2*time.Hour - 17*time.Minute)
	if err := s.makeAssets(rel); err != nil {
		return err
	}
	rels := append(append([]*release(nil), rp.releases...), rel)
	rp.releases = rels
	return nil
}
