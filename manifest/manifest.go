// Package manifest defines the ccmirror bundle format v1: manifest.json,
// SHA256SUMS, the OpenSSH signature over it, project.ini, and the safe tar
// reader and writer that carry them. FORMAT.md beside this file is the
// written specification.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

// Schema is the value of manifest.json's "schema" field for bundle format v1.
const Schema = "ccmirror.bundle/v1"

// Namespace is the sshsig namespace every ccmirror signature uses.
const Namespace = "ccmirror"

// Well-known entry names at the head of every bundle.
const (
	SumsName      = "SHA256SUMS"
	SignatureName = "SHA256SUMS.sig"
	ManifestName  = "manifest.json"
)

// ErrVerify marks every failure to verify a bundle: a bad or missing
// signature, a hash or size mismatch, unsafe, unlisted, duplicate or missing
// content. The CLI maps it to exit code 4.
var ErrVerify = errclass.ErrVerify

// Manifest is the content of manifest.json.
type Manifest struct {
	Schema   string    `json:"schema"`
	Created  time.Time `json:"created"`
	Tool     string    `json:"tool"`
	Projects []Project `json:"projects"`
}

// Project is one project version carried by a bundle.
type Project struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Repository string `json:"repository"` // OWNER/REPO
	Tag        string `json:"tag"`
	Commit     string `json:"commit"`
	ReleaseURL string `json:"release_url"`
	Source     File   `json:"source"`
	Blobs      []Blob `json:"blobs"`
	// Required lists blobs the project needs that the bundle does not carry
	// because the requesting server already holds them with this hash.
	Required []Blob `json:"required,omitempty"`
	// Replaces is the staged print ("sha256:…") of the incomplete version
	// folder the requesting server holds (request.Item.Staged): install
	// replaces that folder without --force while it still has this print.
	Replaces string `json:"replaces,omitempty"`
}

// ValidPrint reports whether s is a staged print: "sha256:" and 64
// lower-case hex digits.
func ValidPrint(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	return ok && ValidHash(h)
}

// File describes one payload file of the bundle.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	URL    string `json:"url,omitempty"`
}

// Blob describes one blob of a project: carried in the bundle at Path, or,
// in Project.Required, expected on the server with SHA256 (Path empty).
type Blob struct {
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	URL     string `json:"url,omitempty"`
	Release string `json:"release,omitempty"` // tag of the release it came from; empty for source tree or --blob-dir
	Origin  string `json:"origin,omitempty"`  // "release", "source", "blob-dir"
	Digest  string `json:"digest,omitempty"`  // GitHub's asset digest, "sha256:…"
}

// SourcePath is where a project's tag archive lives inside a bundle.
func SourcePath(name, version string) string {
	return "projects/" + name + "/" + version + "/source.tar.gz"
}

// BlobPath is where a project's blob lives inside a bundle.
func BlobPath(name, blob string) string {
	return "projects/" + name + "/blobs/" + blob
}

var (
	hexSHA256  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	safeName   = regexp.MustCompile(`^[A-Za-z0-9._+@-][A-Za-z0-9._+@~=-]*$`)
	safeBlobRe = regexp.MustCompile(`^[A-Za-z0-9._+@~=-][A-Za-z0-9._+@~=/-]*$`)
)

// ValidHash reports whether s is a lower-case hex SHA-256.
func ValidHash(s string) bool { return hexSHA256.MatchString(s) }

// ValidName reports whether s is usable as a project name or version: one
// path element of plain characters, not "." or "..".
func ValidName(s string) bool {
	return s != "." && s != ".." && len(s) <= 255 && safeName.MatchString(s)
}

// ValidBlobName reports whether s is usable as a blob name: a clean relative
// path (project.ini may name blobs in sub-folders of blobs/) with no "." or
// ".." elements.
func ValidBlobName(s string) bool {
	if len(s) > 1024 || !safeBlobRe.MatchString(s) || path.Clean(s) != s {
		return false
	}
	for _, el := range strings.Split(s, "/") {
		if el == "." || el == ".." || el == "" {
			return false
		}
	}
	return true
}

// Marshal encodes m as the canonical manifest.json bytes (indented, trailing
// newline).
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse decodes and validates manifest.json. Unknown fields are rejected so a
// newer, incompatible format is never half-understood. Errors wrap ErrVerify.
func Parse(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", ManifestName, ErrVerify, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: %w: trailing data after JSON object", ManifestName, ErrVerify)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", ManifestName, ErrVerify, err)
	}
	return &m, nil
}

// Validate checks the manifest's own consistency: schema, safe names, paths
// that match their names, well-formed hashes and no duplicate paths.
func (m *Manifest) Validate() error {
	if m.Schema != Schema {
		return fmt.Errorf("schema %q, want %q", m.Schema, Schema)
	}
	if len(m.Projects) == 0 {
		return errors.New("no projects")
	}
	paths := map[string]bool{}
	addPath := func(p string) error {
		if paths[p] {
			return fmt.Errorf("path %q listed twice", p)
		}
		paths[p] = true
		return nil
	}
	seen := map[string]bool{}
	blobs := map[string]Blob{} // by path: what a later version may share
	for i, p := range m.Projects {
		if !ValidName(p.Name) || !ValidName(p.Version) {
			return fmt.Errorf("project %d: unsafe name or version %q@%q", i, p.Name, p.Version)
		}
		key := p.Name + "@" + p.Version
		if seen[key] {
			return fmt.Errorf("project %s listed twice", key)
		}
		seen[key] = true
		if p.Source.Path != SourcePath(p.Name, p.Version) {
			return fmt.Errorf("project %s: source path %q, want %q", key, p.Source.Path, SourcePath(p.Name, p.Version))
		}
		if !ValidHash(p.Source.SHA256) || p.Source.Size < 0 {
			return fmt.Errorf("project %s: bad source hash or size", key)
		}
		if err := addPath(p.Source.Path); err != nil {
			return err
		}
		for _, b := range p.Blobs {
			if !ValidBlobName(b.Name) {
				return fmt.Errorf("project %s: unsafe blob name %q", key, b.Name)
			}
			if b.Path != BlobPath(p.Name, b.Name) {
				return fmt.Errorf("project %s: blob %s path %q, want %q", key, b.Name, b.Path, BlobPath(p.Name, b.Name))
			}
			if !ValidHash(b.SHA256) || b.Size < 0 {
				return fmt.Errorf("project %s: blob %s: bad hash or size", key, b.Name)
			}
			// Two versions of one project may carry the same shared blob
			// only once; the path is per project, not per version.
			if paths[b.Path] {
				if o, ok := blobs[b.Path]; !ok || o.SHA256 != b.SHA256 || o.Size != b.Size {
					return fmt.Errorf("path %q listed twice", b.Path)
				}
				continue
			}
			paths[b.Path] = true
			blobs[b.Path] = b
		}
		for _, b := range p.Required {
			if !ValidBlobName(b.Name) || !ValidHash(b.SHA256) || b.Path != "" {
				return fmt.Errorf("project %s: bad required blob %q", key, b.Name)
			}
		}
		if p.Replaces != "" && !ValidPrint(p.Replaces) {
			return fmt.Errorf("project %s: replaces %q, want sha256: and 64 hex digits", key, p.Replaces)
		}
	}
	// A path that is also a folder of another path ("blobs/a" and
	// "blobs/a/b") cannot be extracted: tar would fail on one of them.
	if p, q, ok := folderOfAnother(paths); ok {
		return fmt.Errorf("path %q is both a file and the folder of %q", p, q)
	}
	return nil
}

// folderOfAnother finds a path that is a folder of another path, in
// O(n log n) comparisons: sorted element by element ("/" below every other
// byte), the paths below p follow p directly, so only neighbours need a
// look. (Walking every parent of every path through a map costs the square
// of the path length, minutes for a large hostile manifest.)
func folderOfAnother(paths map[string]bool) (string, string, bool) {
	sorted := slices.SortedFunc(maps.Keys(paths), comparePathElements)
	for i := 1; i < len(sorted); i++ {
		p, q := sorted[i-1], sorted[i]
		if len(q) > len(p) && q[len(p)] == '/' && q[:len(p)] == p {
			return p, q, true
		}
	}
	return "", "", false
}

// comparePathElements orders paths element by element: like byte order,
// except that "/" sorts before every other byte.
func comparePathElements(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return -1
		}
		if y == '/' {
			return 1
		}
		if x < y {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

// Files lists every payload file the manifest declares, once each, in
// bundle order (sorted by path).
func (m *Manifest) Files() []File {
	seen := map[string]bool{}
	var out []File
	for _, p := range m.Projects {
		if !seen[p.Source.Path] {
			seen[p.Source.Path] = true
			out = append(out, p.Source)
		}
		for _, b := range p.Blobs {
			if !seen[b.Path] {
				seen[b.Path] = true
				out = append(out, File{Path: b.Path, Size: b.Size, SHA256: b.SHA256, URL: b.URL})
			}
		}
	}
	sortFiles(out)
	return out
}

func sortFiles(fs []File) {
	sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path })
}
