// Package split cuts a bundle file into numbered parts that fit removable
// media (a FAT32 stick holds files up to 4 GiB - 1 byte) and puts them back
// together.
//
// For a bundle "slurm-2.5.0.tar" split into K parts, Split writes
//
//	slurm-2.5.0.tar.001 … slurm-2.5.0.tar.K   (3 digits, more when K > 999)
//	slurm-2.5.0.tar.parts                     (the part list, JSON)
//	slurm-2.5.0.tar.parts.sig                 (armored OpenSSH signature of the list)
//
// The parts are plain byte ranges: `cat slurm-2.5.0.tar.0* > slurm-2.5.0.tar`
// rebuilds the bundle without ccmirror, and `sha256sum` of each part matches
// the list. Join and Open check the list's signature, that every part is
// present with its listed size, each part's sha256 and the whole bundle's
// sha256; every failure wraps manifest.ErrVerify and names the part.
package split

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/ccmirror/ccmirror/manifest"
)

// Schema is the value of the "schema" field of a part list.
const Schema = "ccmirror.parts/v1"

// ListSuffix is appended to the bundle's file name to name its part list.
const ListSuffix = ".parts"

// SigSuffix is appended to the part list's file name to name its signature.
const SigSuffix = ".sig"

// MaxFAT32 is the largest file a FAT32 file system can hold (4 GiB - 1
// byte); a part size of "4G" is one byte too large for FAT32.
const MaxFAT32 int64 = 1<<32 - 1

// maxNameLen keeps every derived name (bundle + ".parts.sig") within the
// usual 255-byte file name limit.
const maxNameLen = 255 - len(ListSuffix+SigSuffix)

// List is the content of a ".parts" file: which parts make up a bundle, in
// order, with their sizes and hashes, and the whole bundle's size and hash.
type List struct {
	Schema   string `json:"schema"`
	Bundle   string `json:"bundle"`    // file name of the joined bundle, no directory
	Size     int64  `json:"size"`      // bytes of the joined bundle
	SHA256   string `json:"sha256"`    // hex sha256 of the joined bundle
	PartSize int64  `json:"part_size"` // bytes of every part but the last
	Count    int    `json:"count"`     // number of parts
	Parts    []Part `json:"parts"`
}

// Part is one numbered piece of a split bundle.
type Part struct {
	Name   string `json:"name"` // "<bundle>.NNN", beside the list
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Marshal encodes l as the canonical list bytes (indented, trailing
// newline); these are the bytes the signature covers.
func (l *List) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ListName returns the file name of the part list of bundle (a file name).
func ListName(bundle string) string { return bundle + ListSuffix }

// PartName returns the file name of part index (1-based) of a bundle split
// into count parts: the index zero-padded to 3 digits, or to as many digits
// as count has when that is more.
func PartName(bundle string, index, count int) string {
	return fmt.Sprintf("%s.%0*d", bundle, partWidth(count), index)
}

func partWidth(count int) int {
	return max(3, len(strconv.Itoa(count)))
}

// partCount is how many parts a bundle of size bytes needs; never less than one.
func partCount(size, partSize int64) int64 {
	n := size / partSize
	if size%partSize != 0 {
		n++
	}
	return max(n, 1)
}

// firstPart matches the suffix of a first part: ".001", ".0001", …
var firstPart = regexp.MustCompile(`\.00+1$`)

// IsSplit reports whether path names a split bundle: a part list ("*.parts")
// or a first part ("*.001", or "*.0001" and so on for more than 999 parts).
func IsSplit(path string) bool {
	base := filepath.Base(path)
	if strings.HasSuffix(base, ListSuffix) && len(base) > len(ListSuffix) {
		return true
	}
	loc := firstPart.FindStringIndex(base)
	return loc != nil && loc[0] > 0
}

// ListPath returns the path of the part list for listOrFirstPart: the path
// itself for a "*.parts" file, or "<bundle>.parts" beside a first part
// "<bundle>.001".
func ListPath(listOrFirstPart string) (string, error) {
	base := filepath.Base(listOrFirstPart)
	switch {
	case strings.HasSuffix(base, ListSuffix) && len(base) > len(ListSuffix):
		return listOrFirstPart, nil
	case IsSplit(listOrFirstPart):
		loc := firstPart.FindStringIndex(base)
		return filepath.Join(filepath.Dir(listOrFirstPart), base[:loc[0]]+ListSuffix), nil
	}
	return "", fmt.Errorf("%s: not a split bundle: want the part list (*%s) or the first part (*.001)", listOrFirstPart, ListSuffix)
}

// validBundleName reports whether s is usable as a bundle file name: one
// path element, no separators or control characters, short enough that the
// list's signature name still fits a file name.
func validBundleName(s string) error {
	switch {
	case s == "":
		return errors.New("empty bundle name")
	case s == "." || s == "..":
		return fmt.Errorf("bundle name %q is not a file name", s)
	case len(s) > maxNameLen:
		return fmt.Errorf("bundle name is %d bytes, at most %d allowed", len(s), maxNameLen)
	case strings.ContainsAny(s, `/\`):
		return fmt.Errorf("bundle name %q contains a path separator", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("bundle name %q contains a control character", s)
		}
	}
	return nil
}

// Validate checks the list's own consistency: schema, bundle name, that
// parts are named "<bundle>.NNN" in order, count matches, every part but
// the last is part_size bytes, sizes add up to size, and hashes are
// lower-case hex sha256. Errors wrap manifest.ErrVerify.
func (l *List) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("part list: %s: %w", fmt.Sprintf(format, a...), manifest.ErrVerify)
	}
	if l.Schema != Schema {
		return bad("schema %q, want %q", l.Schema, Schema)
	}
	if err := validBundleName(l.Bundle); err != nil {
		return bad("%v", err)
	}
	if l.Size < 0 {
		return bad("negative size %d", l.Size)
	}
	if !manifest.ValidHash(l.SHA256) {
		return bad("sha256 %q is not a lower-case hex sha256", l.SHA256)
	}
	if l.PartSize <= 0 {
		return bad("part_size %d must be positive", l.PartSize)
	}
	if l.Count < 1 {
		return bad("count %d must be at least 1", l.Count)
	}
	if l.Count > maxParts {
		return bad("count %d exceeds the %d parts allowed", l.Count, maxParts)
	}
	if l.Count != len(l.Parts) {
		return bad("count %d but %d parts listed", l.Count, len(l.Parts))
	}
	if want := partCount(l.Size, l.PartSize); int64(l.Count) != want {
		return bad("count %d, want %d for size %d and part_size %d", l.Count, want, l.Size, l.PartSize)
	}
	var sum int64
	for i, p := range l.Parts {
		if want := PartName(l.Bundle, i+1, l.Count); p.Name != want {
			return bad("part %d is named %q, want %q", i+1, p.Name, want)
		}
		if !manifest.ValidHash(p.SHA256) {
			return bad("%s: sha256 %q is not a lower-case hex sha256", p.Name, p.SHA256)
		}
		last := i == len(l.Parts)-1
		switch {
		case p.Size < 0:
			return bad("%s: negative size %d", p.Name, p.Size)
		case !last && p.Size != l.PartSize:
			return bad("%s: size %d, want part_size %d", p.Name, p.Size, l.PartSize)
		case last && p.Size > l.PartSize:
			return bad("%s: size %d exceeds part_size %d", p.Name, p.Size, l.PartSize)
		}
		if p.Size > math.MaxInt64-sum {
			return bad("part sizes overflow")
		}
		sum += p.Size
	}
	if sum != l.Size {
		return bad("parts add up to %d bytes, want size %d", sum, l.Size)
	}
	return nil
}

// ParseList decodes and validates the bytes of a ".parts" file strictly:
// unknown fields, trailing data and any inconsistency (see Validate) are
// rejected. Errors wrap manifest.ErrVerify.
func ParseList(b []byte) (*List, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var l List
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("part list: %w: %v", manifest.ErrVerify, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("part list: %w: trailing data after JSON object", manifest.ErrVerify)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("part list: %w: trailing data after JSON object: %v", manifest.ErrVerify, err)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// ParseSize parses a part size as given on the command line: a positive
// whole number of bytes with an optional binary unit. K, M, G and T (also
// written KB/KiB, MB/MiB, GB/GiB, TB/TiB, any case) multiply by 1024,
// 1024², 1024³ and 1024⁴; B or no unit means bytes. So "4G" and "4GiB" are
// 4294967296 bytes (one byte more than FAT32 allows, see MaxFAT32), "700M"
// is 734003200 and "1000000" is 1000000. Zero, negative, fractional and
// malformed sizes are rejected.
func ParseSize(s string) (int64, error) {
	bad := func(why string) error {
		return fmt.Errorf("invalid size %q: %s; want a positive whole number of bytes with an optional unit K, M, G or T (binary: 1K = 1024), e.g. 4G, 700M, 512K, 1000000", s, why)
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		switch {
		case t == "":
			return 0, bad("empty")
		case t[0] == '-':
			return 0, bad("negative")
		}
		return 0, bad("no number")
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	var shift uint
	switch strings.ToUpper(unit) {
	case "", "B":
		shift = 0
	case "K", "KB", "KIB":
		shift = 10
	case "M", "MB", "MIB":
		shift = 20
	case "G", "GB", "GIB":
		shift = 30
	case "T", "TB", "TIB":
		shift = 40
	default:
		if strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ",") {
			return 0, bad("fractions are not supported")
		}
		return 0, bad(fmt.Sprintf("unknown unit %q", unit))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, bad("too large")
	}
	if n == 0 {
		return 0, bad("must be greater than zero")
	}
	if n > math.MaxInt64>>shift {
		return 0, bad("too large")
	}
	return n << shift, nil
}
