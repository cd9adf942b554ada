// Package index is the signed index a mirror job (`ccmirror sync`) writes
// beside its bundles: index.json lists every bundle published (file name,
// size, sha256, project and version, where it came from), carries a
// sequence number that grows with every index the job writes and the time
// it was written, and index.json.sig is an OpenSSH signature (namespace
// "ccmirror") over its exact bytes. The connected side writes it
// (mirror/syncjob); the disconnected side (staging/update) verifies and
// reads it, so it lives here, importing neither. See manifest/FORMAT.md.
package index

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
)

// Names of the index files and the index schema.
const (
	// Schema is the schema of index.json. Adding the sequence kept v1:
	// an index without one parses with sequence 0 (see Index.Sequence).
	Schema = "ccmirror.index/v1"
	// Name is the index file.
	Name = "index.json"
	// SigName is the index's OpenSSH signature over the exact bytes of
	// index.json, namespace manifest.Namespace ("ccmirror").
	SigName = "index.json.sig"
)

// Bounds on what Parse and Verify read: far above any real mirror (an
// entry is about 1 KiB), small enough that a hostile source cannot make a
// reader allocate without limit.
const (
	// MaxSize bounds index.json.
	MaxSize = 32 << 20
	// MaxSigSize bounds index.json.sig (an RSA-16384 signature is ~3 KiB).
	MaxSigSize = 64 << 10
	// maxAssets bounds the assets of one entry.
	maxAssets = 10000
	// maxText bounds free-text fields (tool, commit, asset names).
	maxText = 1024
)

// Index is index.json: every bundle the job has written, oldest first.
type Index struct {
	Schema string `json:"schema"`
	// Sequence grows by one with every index the job writes and is never
	// reused; readers refuse an index whose sequence is lower than one they
	// accepted before (a replayed old index). Indexes written before the
	// field existed have none and parse as 0.
	Sequence int64 `json:"sequence"`
	// Updated is when the job wrote this index.
	Updated time.Time `json:"updated"`
	// Tool is "ccmirror <version>" of the writer.
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

// Key is the print as one comparable string: name, size and digest (or
// asset id), NUL-separated. Sorting by Key gives the index's asset order.
func (a AssetPrint) Key() string {
	id := a.Digest
	if id == "" {
		id = "id:" + strconv.FormatInt(a.ID, 10)
	}
	return a.Name + "\x00" + strconv.FormatInt(a.Size, 10) + "\x00" + id
}

// Fingerprint returns "sha256:<hex>" over the sorted asset prints: equal
// exactly when the release holds the same assets with the same content.
func Fingerprint(assets []AssetPrint) string {
	lines := make([]string, len(assets))
	for i, a := range assets {
		lines[i] = a.Key()
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
		o[a.Name] = a.Key()
	}
	n := map[string]string{}
	for _, a := range cur {
		n[a.Name] = a.Key()
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

// Parse parses and checks index.json strictly: at most MaxSize bytes, one
// JSON object, no unknown fields at any level, then Validate. Call it only
// on bytes whose signature Verify accepted when they come from outside.
func Parse(b []byte) (*Index, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("index: %d bytes, more than the %d an index may have", len(b), MaxSize)
	}
	var ix Index
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ix); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("index: trailing data after the JSON object")
	}
	if err := ix.Validate(); err != nil {
		return nil, err
	}
	return &ix, nil
}

// Validate checks the schema, the sequence and every entry: safe unique
// file names, usable project names and versions, well-formed hashes,
// fingerprints that match their assets, one entry per project version
// revision.
func (ix *Index) Validate() error {
	if ix.Schema != Schema {
		return fmt.Errorf("index: schema %q, want %q", clip(ix.Schema), Schema)
	}
	if ix.Sequence < 0 {
		return fmt.Errorf("index: negative sequence %d", ix.Sequence)
	}
	if !printable(ix.Tool) {
		return errors.New("index: tool is not short printable text")
	}
	files := map[string]bool{}
	revs := map[string]bool{}
	for i, e := range ix.Bundles {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("index: bundle %d (%s): %s", i+1, clip(e.File), fmt.Sprintf(format, args...))
		}
		rev := e.Project + "@" + e.Version + "#" + strconv.Itoa(e.Revision)
		switch {
		case !ValidFileName(e.File):
			return bad("unsafe or empty file name")
		case files[e.File]:
			return bad("file listed twice")
		case !manifest.ValidName(e.Project) || !manifest.ValidName(e.Version):
			return bad("bad project name or version")
		case !validRepository(e.Repository) || !manifest.ValidTag(e.Tag):
			return bad("no usable repository (OWNER/REPO) or tag")
		case !printable(e.Commit):
			return bad("commit is not short printable text")
		case !manifest.ValidHash(e.SHA256):
			return bad("bad sha256")
		case e.Size < 0:
			return bad("negative size")
		case e.Revision < 1:
			return bad("revision must be at least 1")
		case revs[rev]:
			return bad("%s %s revision %d listed twice", e.Project, e.Version, e.Revision)
		case len(e.Assets) > maxAssets:
			return bad("more than %d assets", maxAssets)
		case e.Fingerprint != Fingerprint(e.Assets):
			return bad("assets fingerprint does not match its asset list")
		}
		for _, a := range e.Assets {
			if !printable(a.Name) || !printable(a.Digest) || a.Size < 0 {
				return bad("an asset has an unusable name, digest or size")
			}
		}
		files[e.File] = true
		revs[rev] = true
	}
	if ix.Updated.IsZero() {
		return errors.New("index: no updated time")
	}
	return nil
}

// ValidFileName accepts a plain file name: no folders, no dot files, only
// letters, digits and "._+-".
func ValidFileName(s string) bool {
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

func validRepository(s string) bool {
	owner, repo, ok := strings.Cut(s, "/")
	return ok && owner != "" && repo != "" && !strings.Contains(repo, "/") && len(s) <= 255 && printable(s) && !strings.ContainsRune(s, ' ')
}

// printable reports whether s is short valid text without control
// characters.
func printable(s string) bool {
	if len(s) > maxText {
		return false
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
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

// Offer returns the bundle the index offers for a project version: its
// newest revision, or nil.
func (ix *Index) Offer(project, version string) *Entry {
	var best *Entry
	for i := range ix.Bundles {
		e := &ix.Bundles[i]
		if e.Project == project && e.Version == version && (best == nil || e.Revision > best.Revision) {
			best = e
		}
	}
	return best
}

// HasFile reports whether an entry already uses file name.
func (ix *Index) HasFile(name string) bool {
	for _, e := range ix.Bundles {
		if e.File == name {
			return true
		}
	}
	return false
}

// Verify checks sig, the content of index.json.sig, over the exact bytes
// of index.json against allowed (namespace "ccmirror", valid at t; the
// zero time means now) and returns who signed, with the signing key's
// fingerprint. It reads nothing of the index itself: parse only after it
// returned no error. Every failure matches manifest.ErrVerify.
func Verify(data, sig []byte, allowed *trust.AllowedSigners, t time.Time) (*trust.Identity, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d an index may have: %w", Name, len(data), MaxSize, manifest.ErrVerify)
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("%s: empty or missing signature: the index is unsigned: %w", SigName, manifest.ErrVerify)
	}
	if len(sig) > MaxSigSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a signature may have: %w", SigName, len(sig), MaxSigSize, manifest.ErrVerify)
	}
	id, err := allowed.Verify(data, sig, manifest.Namespace, t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SigName, err)
	}
	return id, nil
}

// Open verifies the index's signature and only then parses it. A
// well-signed index that does not parse is a verification failure too: it
// matches manifest.ErrVerify.
func Open(data, sig []byte, allowed *trust.AllowedSigners, t time.Time) (*Index, *trust.Identity, error) {
	id, err := Verify(data, sig, allowed, t)
	if err != nil {
		return nil, nil, err
	}
	ix, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s (signed by %s): %w: %w", Name, id.Fingerprint, err, manifest.ErrVerify)
	}
	return ix, id, nil
}
