package syncjob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror"
)

// Names of what the job keeps in its output folder.
const (
	// IndexSchema is the schema of index.json.
	IndexSchema = "ccmirror.index/v1"
	// IndexName is the index file.
	IndexName = "index.json"
	// IndexSigName is the index's OpenSSH signature (namespace "ccmirror")
	// over the exact bytes of index.json.
	IndexSigName = "index.json.sig"
	// LockName is the lock file a run holds (flock) while it works.
	LockName = ".ccmirror-sync.lock"
)

// Index is index.json: every bundle the job has written, oldest first.
type Index struct {
	Schema string `json:"schema"`
	// Updated is when the job last changed the index.
	Updated time.Time `json:"updated"`
	// Tool is "ccmirror <version>" of the last writer.
	Tool    string  `json:"tool,omitempty"`
	Bundles []Entry `json:"bundles"`
}

// Entry is one bundle in the index.
type Entry struct {
	// Project and Version are the project.ini name and version (the
	// staging folder names).
	Project string `json:"project"`
	Version string `json:"version"`
	// Repository ("OWNER/REPO"), Tag and Commit say where it came from.
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Commit     string `json:"commit"`
	// File is the bundle's file name in the output folder (and under the
	// publish URL); Size and SHA256 describe that file.
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Created is the bundle manifest's creation time.
	Created time.Time `json:"created"`
	// Revision is 1 for the first bundle of a release, 2, 3… for bundles
	// made after its assets changed on GitHub in place.
	Revision int `json:"revision"`
	// Fingerprint identifies the release's assets when the bundle was made
	// (see Fingerprint); Assets is what it was computed from.
	Fingerprint string       `json:"assets_fingerprint"`
	Assets      []AssetPrint `json:"assets"`
}

// AssetPrint is what identifies one release asset's content: its name,
// size and GitHub's digest, or the asset id when GitHub gave no digest (a
// re-uploaded asset always gets a new id).
type AssetPrint struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Digest string `json:"digest,omitempty"`
	ID     int64  `json:"id,omitempty"`
}

func (a AssetPrint) line() string {
	id := a.Digest
	if id == "" {
		id = "id:" + strconv.FormatInt(a.ID, 10)
	}
	return a.Name + "\x00" + strconv.FormatInt(a.Size, 10) + "\x00" + id
}

// AssetsOf returns the prints of a release's uploaded assets, sorted by
// name.
func AssetsOf(rel *mirror.Release) []AssetPrint {
	out := []AssetPrint{}
	for _, a := range rel.Assets {
		if a.State != "" && a.State != "uploaded" {
			continue
		}
		p := AssetPrint{Name: a.Name, Size: a.Size, Digest: strings.ToLower(a.Digest)}
		if p.Digest == "" {
			p.ID = a.ID
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].line() < out[j].line() })
	return out
}

// Fingerprint returns "sha256:<hex>" over the sorted asset prints: equal
// exactly when the release holds the same assets with the same content.
func Fingerprint(assets []AssetPrint) string {
	lines := make([]string, len(assets))
	for i, a := range assets {
		lines[i] = a.line()
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// DiffAssets names the assets that differ between two sets of prints:
// changed, added or removed, sorted.
func DiffAssets(old, cur []AssetPrint) []string {
	o := map[string]string{}
	for _, a := range old {
		o[a.Name] = a.line()
	}
	n := map[string]string{}
	for _, a := range cur {
		n[a.Name] = a.line()
	}
	var diff []string
	for name, l := range n {
		if o[name] != l {
			diff = append(diff, name)
		}
	}
	for name := range o {
		if _, ok := n[name]; !ok {
			diff = append(diff, name)
		}
	}
	sort.Strings(diff)
	return diff
}

// ParseIndex parses and checks index.json.
func ParseIndex(b []byte) (*Index, error) {
	var ix Index
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&ix); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if dec.More() {
		return nil, errors.New("index: trailing data after the JSON object")
	}
	if err := ix.Validate(); err != nil {
		return nil, err
	}
	return &ix, nil
}

// Validate checks the schema and every entry: safe unique file names,
// well-formed hashes, fingerprints that match their assets.
func (ix *Index) Validate() error {
	if ix.Schema != IndexSchema {
		return fmt.Errorf("index: schema %q, want %q", ix.Schema, IndexSchema)
	}
	files := map[string]bool{}
	for i, e := range ix.Bundles {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("index: bundle %d (%s): %s", i+1, e.File, fmt.Sprintf(format, args...))
		}
		switch {
		case !validFileName(e.File):
			return bad("unsafe or empty file name")
		case files[e.File]:
			return bad("file listed twice")
		case !manifest.ValidName(e.Project) || !manifest.ValidName(e.Version):
			return bad("bad project name or version")
		case e.Repository == "" || !strings.Contains(e.Repository, "/") || e.Tag == "":
			return bad("no repository or tag")
		case !manifest.ValidHash(e.SHA256):
			return bad("bad sha256")
		case e.Size < 0:
			return bad("negative size")
		case e.Revision < 1:
			return bad("revision must be at least 1")
		case e.Fingerprint != Fingerprint(e.Assets):
			return bad("assets fingerprint does not match its asset list")
		}
		files[e.File] = true
	}
	return nil
}

// validFileName accepts a plain file name: no folders, no dot files.
func validFileName(s string) bool {
	if s == "" || len(s) > 255 || strings.HasPrefix(s, ".") {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("._+-", c)) {
			return false
		}
	}
	return true
}

// Marshal returns the index as indented JSON ending in a newline.
func (ix *Index) Marshal() ([]byte, error) {
	if ix.Bundles == nil {
		ix.Bundles = []Entry{}
	}
	for i := range ix.Bundles {
		if ix.Bundles[i].Assets == nil {
			ix.Bundles[i].Assets = []AssetPrint{}
		}
	}
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Latest returns the newest revision of repository@tag, or nil.
func (ix *Index) Latest(repository, tag string) *Entry {
	var best *Entry
	for i := range ix.Bundles {
		e := &ix.Bundles[i]
		if strings.EqualFold(e.Repository, repository) && e.Tag == tag && (best == nil || e.Revision > best.Revision) {
			best = e
		}
	}
	return best
}

// hasFile reports whether an entry already uses file name.
func (ix *Index) hasFile(name string) bool {
	for _, e := range ix.Bundles {
		if e.File == name {
			return true
		}
	}
	return false
}

// BundleName is the file name of revision rev of a project version:
// "slurm-3.0.12.tar", then "slurm-3.0.12.r2.tar", "…r3.tar".
func BundleName(project, version string, rev int) string {
	if rev <= 1 {
		return project + "-" + version + ".tar"
	}
	return project + "-" + version + ".r" + strconv.Itoa(rev) + ".tar"
}
