// Package request defines the request file that `ccmirror plan` writes on a
// CycleCloud server and `ccmirror fetch --request` reads on the connected
// side: which project versions the server wants, which records could not be
// resolved, and an inventory of the blobs already staged (so a bundle need
// not carry them again). A request may be signed with a detached OpenSSH
// signature beside it (SigPath), in its own namespace so a bundle signature
// can never pass as a request signature.
package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ccmirror/ccmirror/internal/regfile"
	"github.com/ccmirror/ccmirror/manifest"
)

// Schema is the value of the request file's "schema" field.
const Schema = "ccmirror.request/v1"

// Namespace is the sshsig namespace of request signatures. It differs from
// manifest.Namespace so a bundle's SHA256SUMS.sig can never be replayed as a
// request signature, nor the other way round.
const Namespace = "ccmirror-request"

// Reasons a project version is wanted.
const (
	ReasonMissing    = "missing"    // the version is not staged at all
	ReasonIncomplete = "incomplete" // the version folder exists but files or blobs are missing
)

// MaxSize bounds the size of a request file Load accepts.
const MaxSize = 32 << 20

// Request is the content of a request file.
type Request struct {
	Schema       string          `json:"schema"`
	Created      time.Time       `json:"created"`
	Hostname     string          `json:"hostname"` // the CycleCloud server that made the request
	Root         string          `json:"root"`     // its CycleCloud root, e.g. /opt/cycle_server
	Wanted       []Item          `json:"wanted"`
	Unresolvable []Unresolvable  `json:"unresolvable"`
	Inventory    []StagedProject `json:"inventory"`
}

// Item is one project version the server wants.
type Item struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Repository string `json:"repository"` // OWNER/REPO
	Tag        string `json:"tag"`
	URL        string `json:"url,omitempty"` // the record's Url, for people reading the file
	Reason     string `json:"reason"`        // ReasonMissing or ReasonIncomplete
	// Staged, for an incomplete version, is the staged print of its folder
	// as plan saw it (staging.VersionPrint); fetch --request copies it into
	// the bundle (manifest.Project.Replaces) so install repairs that folder
	// without --force, unless it changed since.
	Staged string `json:"staged,omitempty"`
}

// Unresolvable is a project record plan could not turn into an Item, with
// the reason; fetch reports these and does not guess.
type Unresolvable struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	URL     string `json:"url"`
	Problem string `json:"problem"`
}

// StagedProject lists what the server already holds for one project under
// R/work/staging/projects/<name>/.
type StagedProject struct {
	Name     string       `json:"name"`
	Versions []string     `json:"versions,omitempty"` // staged version folders
	Blobs    []StagedBlob `json:"blobs"`              // files under blobs/
}

// StagedBlob is one blob already staged on the server.
type StagedBlob struct {
	Name   string `json:"name"` // path relative to the project's blobs/ folder
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

var repoRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$`)

// ValidRepository reports whether s is OWNER/REPO.
func ValidRepository(s string) bool {
	if len(s) > 255 || !repoRe.MatchString(s) {
		return false
	}
	r := s[strings.IndexByte(s, '/')+1:]
	return r != "." && r != ".."
}

// printable reports whether s is valid text without control characters, so
// it can be shown on a terminal as it is.
func printable(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// Validate checks the request's consistency: schema, creation time, safe
// names and versions, OWNER/REPO repositories, known reasons, well-formed
// hashes and sizes, no duplicates, no control characters in text shown to
// people. Errors name the offending entry.
func (r *Request) Validate() error {
	if r.Schema != Schema {
		return fmt.Errorf("schema %q, want %q", r.Schema, Schema)
	}
	if r.Created.IsZero() {
		return errors.New("no creation time")
	}
	if !printable(r.Hostname, 255) {
		return fmt.Errorf("hostname %q contains control characters or is too long", r.Hostname)
	}
	if !printable(r.Root, 4096) {
		return fmt.Errorf("root %q contains control characters or is too long", r.Root)
	}
	wanted := map[string]bool{}
	for i, it := range r.Wanted {
		if !manifest.ValidName(it.Name) || !manifest.ValidName(it.Version) {
			return fmt.Errorf("wanted[%d]: unsafe name or version %q@%q", i, it.Name, it.Version)
		}
		key := it.Name + "@" + it.Version
		if wanted[key] {
			return fmt.Errorf("wanted[%d]: %s listed twice", i, key)
		}
		wanted[key] = true
		if !ValidRepository(it.Repository) {
			return fmt.Errorf("wanted[%d] %s: repository %q is not OWNER/REPO", i, key, it.Repository)
		}
		if !manifest.ValidTag(it.Tag) {
			return fmt.Errorf("wanted[%d] %s: tag %q is not a usable tag name", i, key, it.Tag)
		}
		if !printable(it.URL, 4096) {
			return fmt.Errorf("wanted[%d] %s: url contains control characters or is too long", i, key)
		}
		if it.Reason != ReasonMissing && it.Reason != ReasonIncomplete {
			return fmt.Errorf("wanted[%d] %s: reason %q, want %q or %q", i, key, it.Reason, ReasonMissing, ReasonIncomplete)
		}
		if it.Staged != "" && (it.Reason != ReasonIncomplete || !manifest.ValidPrint(it.Staged)) {
			return fmt.Errorf("wanted[%d] %s: staged %q: want sha256: and 64 hex digits, on an incomplete version only", i, key, it.Staged)
		}
	}
	for i, u := range r.Unresolvable {
		// Names here may be exactly what is wrong, so they are not held to
		// ValidName, only kept printable.
		if !printable(u.Name, 1024) || !printable(u.Version, 1024) || !printable(u.URL, 4096) || !printable(u.Problem, 4096) {
			return fmt.Errorf("unresolvable[%d]: field contains control characters or is too long", i)
		}
		if u.Problem == "" {
			return fmt.Errorf("unresolvable[%d] %q@%q: no problem given", i, u.Name, u.Version)
		}
	}
	projects := map[string]bool{}
	for i, p := range r.Inventory {
		if !manifest.ValidName(p.Name) {
			return fmt.Errorf("inventory[%d]: unsafe project name %q", i, p.Name)
		}
		if projects[p.Name] {
			return fmt.Errorf("inventory[%d]: project %s listed twice", i, p.Name)
		}
		projects[p.Name] = true
		versions := map[string]bool{}
		for _, v := range p.Versions {
			if !manifest.ValidName(v) {
				return fmt.Errorf("inventory %s: unsafe version %q", p.Name, v)
			}
			if versions[v] {
				return fmt.Errorf("inventory %s: version %s listed twice", p.Name, v)
			}
			versions[v] = true
		}
		blobs := map[string]bool{}
		for _, b := range p.Blobs {
			if !manifest.ValidBlobName(b.Name) {
				return fmt.Errorf("inventory %s: unsafe blob name %q", p.Name, b.Name)
			}
			if blobs[b.Name] {
				return fmt.Errorf("inventory %s: blob %s listed twice", p.Name, b.Name)
			}
			blobs[b.Name] = true
			if !manifest.ValidHash(b.SHA256) {
				return fmt.Errorf("inventory %s: blob %s: sha256 %q is not 64 lower-case hex digits", p.Name, b.Name, b.SHA256)
			}
			if b.Size < 0 {
				return fmt.Errorf("inventory %s: blob %s: negative size %d", p.Name, b.Name, b.Size)
			}
		}
	}
	return nil
}

// StagedBlob reports the blob named blob that the server already holds for
// project, if the inventory lists it.
func (r *Request) StagedBlob(project, blob string) (StagedBlob, bool) {
	for _, p := range r.Inventory {
		if p.Name != project {
			continue
		}
		for _, b := range p.Blobs {
			if b.Name == blob {
				return b, true
			}
		}
	}
	return StagedBlob{}, false
}

// Marshal validates r and encodes it as the canonical request file bytes
// (indented JSON, trailing newline, empty lists written as []). These bytes
// are what a request signature covers.
func (r *Request) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	c := *r
	if c.Wanted == nil {
		c.Wanted = []Item{}
	}
	if c.Unresolvable == nil {
		c.Unresolvable = []Unresolvable{}
	}
	c.Inventory = append([]StagedProject{}, r.Inventory...)
	for i := range c.Inventory {
		if c.Inventory[i].Blobs == nil {
			c.Inventory[i].Blobs = []StagedBlob{}
		}
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse decodes and validates a request file. It checks the schema first, so
// a bundle manifest or a newer request format is named as such, then decodes
// strictly: unknown fields and trailing data are rejected. Errors wrap
// manifest.ErrVerify and name the problem.
func Parse(b []byte) (*Request, error) {
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&head); err != nil {
		return nil, fmt.Errorf("request: %w: not a request file: %v", manifest.ErrVerify, err)
	}
	if head.Schema == nil {
		return nil, fmt.Errorf("request: %w: no \"schema\" field; not a ccmirror request file", manifest.ErrVerify)
	}
	if *head.Schema != Schema {
		return nil, fmt.Errorf("request: %w: schema %q, want %q", manifest.ErrVerify, *head.Schema, Schema)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("request: %w: %v", manifest.ErrVerify, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("request: %w: trailing data after the JSON object", manifest.ErrVerify)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("request: %w: %v", manifest.ErrVerify, err)
	}
	return &r, nil
}

// SigPath is where the detached signature of the request file at path lives:
// path + ".sig" (request.json -> request.json.sig). It holds an armored
// OpenSSH signature (ssh-keygen -Y sign format, namespace Namespace) over the
// exact bytes of the request file.
func SigPath(path string) string { return path + ".sig" }

// Load reads the request file at path. When verify is non-nil the request
// must be signed: SigPath(path) must exist, and verify(msg, sig) is called
// with the file's exact bytes and the armored signature before anything is
// parsed; its error is returned wrapped with the signature's path (verify
// should wrap manifest.ErrVerify, as trust.AllowedSigners.Verify does, and
// check Namespace). When verify is nil any signature file is ignored.
func Load(path string, verify func(msg, sig []byte) error) (*Request, error) {
	msg, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	if verify != nil {
		sp := SigPath(path)
		sig, err := readLimited(sp)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("request %s: signature %s missing; the request must be signed: %w", path, sp, manifest.ErrVerify)
		}
		if err != nil {
			return nil, fmt.Errorf("read request signature: %w", err)
		}
		if err := verify(msg, sig); err != nil {
			return nil, fmt.Errorf("request %s: signature %s: %w", path, sp, err)
		}
	}
	r, err := Parse(msg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// readLimited reads a whole regular file of at most MaxSize bytes; a FIFO
// or device is refused, not waited on.
func readLimited(path string) ([]byte, error) {
	f, err := regfile.Open(path, regfile.Options{})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, MaxSize>>20)
	}
	return b, nil
}

// Save writes r to path (through a temporary file and rename) and, when sign
// is non-nil, its signature sign(bytes) to SigPath(path). sign must produce
// an armored sshsig in Namespace. Saving unsigned removes a stale signature
// file so an old signature is never left beside a new request. The signature
// is made before anything on disk changes.
func Save(path string, r *Request, sign func(msg []byte) ([]byte, error)) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	var sig []byte
	if sign != nil {
		if sig, err = sign(b); err != nil {
			return fmt.Errorf("sign request %s: %w", path, err)
		}
	}
	sp := SigPath(path)
	if sig == nil {
		if err := os.Remove(sp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale signature: %w", err)
		}
	}
	if err := writeAtomic(path, b); err != nil {
		return err
	}
	if sig != nil {
		if err := writeAtomic(sp, sig); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic writes b to path via a temporary file in the same folder.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
