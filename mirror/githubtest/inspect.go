package githubtest

import (
	"fmt"
	"io"
)

// AssetInfo describes one release asset as the fake serves it, for tests
// that compare what a client stored with what GitHub had.
type AssetInfo struct {
	ID     int64
	Name   string
	Size   int64
	SHA256 string // hex, the same value as the asset's "digest" without "sha256:"
	URL    string // browser_download_url on the download host
}

func (s *Server) findRelease(repo, tag string) (*release, error) {
	s.mu.RLock()
	rp := s.lookupRepo(repo)
	s.mu.RUnlock()
	if rp == nil {
		return nil, fmt.Errorf("githubtest: %s: no such repository", repo)
	}
	rel := s.releaseByTag(rp, tag)
	if rel == nil {
		return nil, fmt.Errorf("githubtest: %s@%s: no such release", repo, tag)
	}
	return rel, nil
}

// Tags lists the release tags of repo ("OWNER/REPO" or "REPO"), oldest
// published first.
func (s *Server) Tags(repo string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rp := s.lookupRepo(repo)
	if rp == nil {
		return nil, fmt.Errorf("githubtest: %s: no such repository", repo)
	}
	tags := make([]string, 0, len(rp.releases))
	for _, r := range rp.releases {
		tags = append(tags, r.tag)
	}
	return tags, nil
}

// Commit returns the commit id a release tag points at.
func (s *Server) Commit(repo, tag string) (string, error) {
	rel, err := s.findRelease(repo, tag)
	if err != nil {
		return "", err
	}
	return rel.commit, nil
}

// Assets lists the assets of a release in the order the API lists them.
func (s *Server) Assets(repo, tag string) ([]AssetInfo, error) {
	rel, err := s.findRelease(repo, tag)
	if err != nil {
		return nil, err
	}
	var out []AssetInfo
	for _, a := range s.assetsOf(rel) {
		out = append(out, AssetInfo{ID: a.id, Name: a.name, Size: a.size, SHA256: s.assetDigest(a), URL: s.assetURL(rel, a)})
	}
	return out, nil
}

// OpenAsset returns the bytes of one asset of a release, exactly as the
// download host serves them.
func (s *Server) OpenAsset(repo, tag, name string) (io.ReadSeeker, error) {
	rel, err := s.findRelease(repo, tag)
	if err != nil {
		return nil, err
	}
	a := s.assetByName(rel, name)
	if a == nil {
		return nil, fmt.Errorf("githubtest: %s@%s: no asset %q", repo, tag, name)
	}
	return a.open(), nil
}

// Archive returns the bytes of a release's tag archive
// (/archive/refs/tags/TAG.tar.gz), exactly as the download host serves it.
func (s *Server) Archive(repo, tag string) ([]byte, error) {
	rel, err := s.findRelease(repo, tag)
	if err != nil {
		return nil, err
	}
	return s.archive(rel, kindTarGz)
}

// ArchiveURL returns the download host URL of a release's tag archive.
func (s *Server) ArchiveURL(repo, tag string) (string, error) {
	rel, err := s.findRelease(repo, tag)
	if err != nil {
		return "", err
	}
	return s.archiveURL(rel, kindTarGz), nil
}
