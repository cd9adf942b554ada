package githubtest

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
)

// onlyOn lists assets that exist on exactly one release of a repository,
// like the real cyclecloud_api wheel that cyclecloud-slurm 2.5.0 and 2.7.x
// name in project.ini but only release 2.6.1 carries.
var onlyOn = map[string]string{
	"cyclecloud-slurm/cyclecloud_api-8.1.0-py2.py3-none-any.whl": "2.6.1",
	// Old PBS Pro binaries that cyclecloud-pbspro 2.0.25 names live on
	// its dated -bins releases only.
	"cyclecloud-pbspro/pbspro-debuginfo-18.1.4-0.x86_64.rpm": "2023-03-29-bins",
	"cyclecloud-pbspro/pbspro-client-18.1.4-0.x86_64.rpm":    "2024-12-03-bins",
}

// prereleaseOnly lists the repositories whose release workflow
// (.github/workflows/release.yml) creates every release with
// "prerelease": true, as the real cyclecloud-pbspro, -gridengine and
// -hpcpack do: GitHub's /releases/latest has no answer for them (404).
var prereleaseOnly = map[string]bool{
	"cyclecloud-pbspro":     true,
	"cyclecloud-gridengine": true,
	"cyclecloud-hpcpack":    true,
}

// binsRelease is a dated release that only carries blobs, like Azure's
// "2023-03-29-bins": its tag is not a version, its tree is the project's
// as of then, and its assets are blobs no version release carries (listed
// in onlyOn). They were uploaded before GitHub computed asset digests
// (June 2025), so their assets carry "digest": null next to version
// releases whose assets have one.
type binsRelease struct {
	tag       string
	published time.Time
}

// binsReleases are the dated -bins releases of each repository, published
// in their repository's release style (prereleases where prereleaseOnly).
var binsReleases = map[string][]binsRelease{
	"cyclecloud-pbspro": {
		{tag: "2023-03-29-bins", published: time.Date(2023, 3, 29, 18, 2, 11, 0, time.UTC)},
		{tag: "2024-12-03-bins", published: time.Date(2024, 12, 3, 9, 41, 52, 0, time.UTC)},
	},
}

// backports are releases of an older line published after a higher
// version and marked latest (make_latest), as Azure published 3.0.x
// after 4.0.x: copied from the release `from` (tree, project.ini retagged).
var backports = map[string][]struct{ tag, from string }{
	"cyclecloud-slurm": {{tag: "3.0.13", from: "3.0.12"}},
}

// worldEpoch is the first publication date of the synthesized releases;
// each later version of a repository is published 97 days after the one
// before, so dates are fixed and ordered by version.
var worldEpoch = time.Date(2021, 6, 1, 15, 4, 5, 0, time.UTC)

// Git modes as written in tree.tsv.
const (
	modeFile    = 0o100644
	modeExec    = 0o100755
	modeSymlink = 0o120000
	modeGitlink = 0o160000
)

type treeEntry struct {
	mode    uint32
	size    int64
	path    string
	content []byte // given by Options.Content; nil means filler of size bytes
}

type repo struct {
	owner, name string
	id          int64
	releases    []*release // ordered by published, oldest first; replaced, never mutated
	marked      *release   // the release marked latest (make_latest), nil for GitHub's default
}

func (r *repo) full() string { return r.owner + "/" + r.name }

type release struct {
	repo       *repo
	id         int64
	tag        string
	commit     string
	commitTime time.Time // also the release's created_at and every archive mtime
	published  time.Time
	prerelease bool
	bins       bool // a dated -bins release: carries only the blobs onlyOn puts there
	// extraAssets are asset names Options.Content adds that project.ini
	// does not name.
	extraAssets []string
	projectINI  []byte
	tree        []treeEntry
	assets      []*asset // replaced under Server.mu, never mutated in place

	archMu   sync.Mutex
	archives map[string][]byte
}

type asset struct {
	id       int64
	name     string
	size     int64
	seed     [32]byte
	content  []byte // set by ReplaceAsset; nil means generated from seed
	sum      string // sha256 hex of content, when content is set
	created  time.Time
	updated  time.Time
	noDigest bool // uploaded before GitHub computed digests: "digest": null
	download atomic.Int64
}

// loadWorld reads projects/<repo>/<tag>/{commit,project.ini,tree.tsv} and
// builds every repository, release and asset.
func (s *Server) loadWorld(fsys fs.FS, content []Content) error {
	s.repos = map[string]*repo{}
	dirs, err := fs.ReadDir(fsys, "projects")
	if err != nil {
		return fmt.Errorf("githubtest: fixtures: %w", err)
	}
	var repoNames []string
	for _, d := range dirs {
		if d.IsDir() {
			repoNames = append(repoNames, d.Name())
		}
	}
	for _, c := range content {
		if !slices.Contains(repoNames, c.Repo) {
			repoNames = append(repoNames, c.Repo)
		}
	}
	for _, name := range repoNames {
		rp := &repo{owner: s.owner, name: name, id: 100000 + int64(len(s.repoList))*1000}
		tags, err := fs.ReadDir(fsys, path.Join("projects", name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("githubtest: fixtures %s: %w", name, err)
		}
		var rels []*release
		for _, t := range tags {
			if !t.IsDir() {
				continue
			}
			rel, err := loadRelease(fsys, rp, t.Name())
			if err != nil {
				return err
			}
			rels = append(rels, rel)
		}
		if rels, err = applyContent(rp, rels, content); err != nil {
			return err
		}
		if len(rels) == 0 {
			continue
		}
		slices.SortFunc(rels, func(a, b *release) int { return manifest.CompareVersions(a.tag, b.tag) })
		for i, rel := range rels {
			rel.published = worldEpoch.Add(time.Duration(i)*97*24*time.Hour + time.Duration(len(s.repoList))*time.Hour)
		}
		newest := rels[len(rels)-1]
		for _, b := range binsReleases[rp.name] {
			rels = append(rels, &release{repo: rp, tag: b.tag, published: b.published, bins: true,
				commit: fakeCommit(rp.full(), b.tag, newest.commit), projectINI: newest.projectINI, tree: newest.tree})
		}
		slices.SortStableFunc(rels, func(a, b *release) int { return a.published.Compare(b.published) })
		for _, bp := range backports[rp.name] {
			var from *release
			for _, r := range rels {
				if r.tag == bp.from {
					from = r
				}
			}
			if from == nil {
				continue // custom fixtures without the release it copies
			}
			last := rels[len(rels)-1]
			rel := &release{repo: rp, tag: bp.tag, published: last.published.Add(24 * time.Hour),
				commit: fakeCommit(rp.full(), bp.tag, from.commit), projectINI: retag(from.projectINI, from.tag, bp.tag), tree: from.tree}
			rels = append(rels, rel)
			rp.marked = rel
		}
		for _, rel := range rels {
			rel.commitTime = rel.published.Add(-2*time.Hour - 17*time.Minute)
			rel.prerelease = prereleaseOnly[rp.name]
			rel.id = s.newReleaseID()
			if err := s.makeAssets(rel); err != nil {
				return err
			}
		}
		rp.releases = rels
		s.repos[strings.ToLower(rp.full())] = rp
		s.repoList = append(s.repoList, rp)
	}
	if len(s.repoList) == 0 {
		return fmt.Errorf("githubtest: fixtures: no projects/<repo>/<tag> folders")
	}
	return nil
}

func loadRelease(fsys fs.FS, rp *repo, tag string) (*release, error) {
	dir := path.Join("projects", rp.name, tag)
	commit, err := fs.ReadFile(fsys, path.Join(dir, "commit"))
	if err != nil {
		return nil, fmt.Errorf("githubtest: fixtures %s@%s: %w", rp.name, tag, err)
	}
	c := strings.TrimSpace(string(commit))
	if len(c) != 40 {
		return nil, fmt.Errorf("githubtest: fixtures %s@%s: commit %q is not a 40-hex sha", rp.name, tag, c)
	}
	if _, err := hex.DecodeString(c); err != nil {
		return nil, fmt.Errorf("githubtest: fixtures %s@%s: commit: %w", rp.name, tag, err)
	}
	ini, err := fs.ReadFile(fsys, path.Join(dir, "project.ini"))
	if err != nil {
		return nil, fmt.Errorf("githubtest: fixtures %s@%s: %w", rp.name, tag, err)
	}
	tsv, err := fs.ReadFile(fsys, path.Join(dir, "tree.tsv"))
	if err != nil {
		return nil, fmt.Errorf("githubtest: fixtures %s@%s: %w", rp.name, tag, err)
	}
	tree, err := parseTree(tsv)
	if err != nil {
		return nil, fmt.Errorf("githubtest: fixtures %s@%s: tree.tsv: %w", rp.name, tag, err)
	}
	return &release{repo: rp, tag: tag, commit: c, projectINI: ini, tree: tree}, nil
}

// parseTree reads tree.tsv: "<git mode>\t<size>\t<path>" per line.
func parseTree(b []byte) ([]treeEntry, error) {
	var out []treeEntry
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want mode<TAB>size<TAB>path", n)
		}
		mode, err := strconv.ParseUint(f[0], 8, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d: mode %q: %w", n, f[0], err)
		}
		switch mode {
		case modeFile, modeExec, modeSymlink, modeGitlink:
		default:
			return nil, fmt.Errorf("line %d: unsupported git mode %s", n, f[0])
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("line %d: size %q: not a byte count", n, f[1])
		}
		p := f[2]
		if p == "" || strings.ContainsRune(p, 0) || strings.HasPrefix(p, "/") || p != path.Clean(p) || p == ".." || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("line %d: bad path %q", n, p)
		}
		if seen[p] {
			return nil, fmt.Errorf("line %d: duplicate path %q", n, p)
		}
		seen[p] = true
		out = append(out, treeEntry{mode: uint32(mode), size: size, path: p})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, e := range out {
		for d := path.Dir(e.path); d != "."; d = path.Dir(d) {
			if seen[d] {
				return nil, fmt.Errorf("%q is both a file and the directory of %q", d, e.path)
			}
		}
	}
	return out, nil
}

// makeAssets derives a release's assets from its project.ini: every blob
// it names, except those committed in the tree's blobs/ folder and those
// that live on one other release only (onlyOn).
func (s *Server) makeAssets(rel *release) error {
	inTree := map[string]bool{}
	for _, e := range rel.tree {
		if strings.HasPrefix(e.path, "blobs/") {
			inTree[strings.TrimPrefix(e.path, "blobs/")] = true
		}
	}
	seen := map[string]bool{}
	var assets []*asset
	for _, b := range blobFiles(rel.projectINI) {
		if inTree[b] {
			continue
		}
		name := path.Base(b)
		only, ok := onlyOn[rel.repo.name+"/"+name]
		if (ok && only != rel.tag) || (rel.bins && !ok) {
			continue
		}
		if seen[name] || name == "." || name == "/" {
			continue
		}
		seen[name] = true
		size := s.blobSize
		if s.sizeFor != nil {
			if n := s.sizeFor(rel.repo.full(), rel.tag, name); n >= 0 {
				size = n
			}
		}
		assets = append(assets, s.newAsset(rel, name, size))
	}
	for _, name := range rel.extraAssets {
		if !seen[name] {
			seen[name] = true
			assets = append(assets, s.newAsset(rel, name, 0))
		}
	}
	rel.assets = assets
	return nil
}

// newAsset makes one asset of rel: the bytes Options.Content gives for
// its repository and name, else size generated bytes.
func (s *Server) newAsset(rel *release, name string, size int64) *asset {
	a := &asset{
		id:       s.newAssetID(),
		name:     name,
		size:     size,
		seed:     contentSeed(rel.repo.full(), name),
		created:  rel.published.Add(-30 * time.Minute),
		updated:  rel.published.Add(-29 * time.Minute),
		noDigest: rel.bins,
	}
	if b, ok := s.assetBytes[strings.ToLower(rel.repo.name)+"/"+name]; ok {
		a.content, a.size, a.sum = b, int64(len(b)), sha256Hex(b)
	}
	return a
}

func (s *Server) newReleaseID() int64 { s.lastRelease++; return s.lastRelease }
func (s *Server) newAssetID() int64   { s.lastAsset++; return s.lastAsset }

// fakeCommit makes the commit id of a release added by AddRelease.
func fakeCommit(repo, tag, from string) string {
	h := sha1.Sum([]byte("ccmirror githubtest commit\x00" + repo + "\x00" + tag + "\x00" + from))
	return hex.EncodeToString(h[:])
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// lookupRepo finds a repository by "owner/name" or bare "name",
// case-insensitively like GitHub. Callers hold s.mu.
func (s *Server) lookupRepo(name string) *repo {
	name = strings.ToLower(strings.Trim(name, "/"))
	if rp := s.repos[name]; rp != nil {
		return rp
	}
	if !strings.Contains(name, "/") {
		return s.repos[strings.ToLower(s.owner)+"/"+name]
	}
	return nil
}

func (s *Server) repoByPath(owner, name string) *repo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.repos[strings.ToLower(owner+"/"+name)]
}

// snapshot returns the repository's current releases, newest first.
func (s *Server) releasesNewestFirst(rp *repo) []*release {
	s.mu.RLock()
	rels := slices.Clone(rp.releases)
	s.mu.RUnlock()
	slices.Reverse(rels)
	return rels
}

func (s *Server) releaseByTag(rp *repo, tag string) *release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range rp.releases {
		if r.tag == tag {
			return r
		}
	}
	return nil
}

func (s *Server) releaseByID(rp *repo, id int64) *release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range rp.releases {
		if r.id == id {
			return r
		}
	}
	return nil
}

// latestRelease is what GitHub's /releases/latest answers: the release
// marked latest (make_latest) or else the newest non-prerelease by
// published_at (no drafts exist in the fake); nil when every release is a
// prerelease.
func (s *Server) latestRelease(rp *repo) *release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rp.marked != nil && !rp.marked.prerelease {
		return rp.marked
	}
	var best *release
	for _, r := range rp.releases {
		if !r.prerelease && (best == nil || !r.published.Before(best.published)) {
			best = r
		}
	}
	return best
}

// newestRelease is the release published last, prerelease or not: what
// the default branch points at.
func (s *Server) newestRelease(rp *repo) *release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best *release
	for _, r := range rp.releases {
		if best == nil || !r.published.Before(best.published) {
			best = r
		}
	}
	return best
}

func (s *Server) assetsOf(rel *release) []*asset {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return rel.assets
}

func (s *Server) assetByID(rp *repo, id int64) (*release, *asset) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range rp.releases {
		for _, a := range r.assets {
			if a.id == id {
				return r, a
			}
		}
	}
	return nil, nil
}

func (s *Server) assetByName(rel *release, name string) *asset {
	for _, a := range s.assetsOf(rel) {
		if a.name == name {
			return a
		}
	}
	return nil
}

// resolveRef maps a git ref (tag name, refs/tags/TAG, a full or 7+ hex
// prefix commit sha, HEAD or the default branch) to a release.
func (s *Server) resolveRef(rp *repo, ref string) *release {
	ref = strings.TrimPrefix(ref, "refs/tags/")
	ref = strings.TrimPrefix(ref, "tags/")
	if r := s.releaseByTag(rp, ref); r != nil {
		return r
	}
	switch ref {
	case "HEAD", defaultBranch, "refs/heads/" + defaultBranch, "heads/" + defaultBranch:
		return s.newestRelease(rp)
	}
	if len(ref) >= 7 && len(ref) <= 40 {
		if _, err := hex.DecodeString(ref + strings.Repeat("0", len(ref)%2)); err == nil {
			s.mu.RLock()
			defer s.mu.RUnlock()
			for _, r := range rp.releases {
				if strings.HasPrefix(r.commit, strings.ToLower(ref)) {
					return r
				}
			}
		}
	}
	return nil
}

const defaultBranch = "master"

// assetDigest returns the sha256 hex of an asset's bytes.
func (s *Server) assetDigest(a *asset) string {
	if a.content != nil {
		return a.sum
	}
	return s.digests.sum(a.seed, a.size)
}
