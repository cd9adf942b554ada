package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrLayout says a bundle's head or payload no longer fits the Layout
// planned for it (a signature or manifest of another length, a file of
// another size): the caller writes the bundle with WriteBundle instead.
var ErrLayout = errors.New("bundle does not fit the planned layout")

// Layout is where every part of a bundle lies, planned before the payload
// hashes are known, so the payload can be written into the bundle file in
// place while it is downloaded. Hashes are fixed-length hex, the creation
// time is a fixed-length RFC 3339 UTC string and tar headers have fixed
// widths, so a manifest with placeholder hashes gives the same offsets as
// the final one. Fill the payload regions (DataOffset, Size), then call
// WriteHead with the final manifest and signature: the file then holds
// exactly the bytes WriteBundle writes.
type Layout struct {
	sigLen int
	head   int64 // bytes of the three head entries
	size   int64 // bytes of the whole bundle, end of archive included
	files  []layoutFile
	index  map[string]int
}

type layoutFile struct {
	path      string
	size      int64
	mode      int64
	hdrOff    int64
	dataOff   int64
	headerLen int64
}

// PlanBundle plans the layout of the bundle WriteBundle would write for m
// and entries with a signature of sigLen bytes (0: unsigned). Only the
// paths, sizes and modes of entries matter; m's hashes may be placeholders
// (any valid hex) and its creation time another whole second.
func PlanBundle(m *Manifest, entries []Entry, sigLen int) (*Layout, error) {
	if sigLen < 0 || sigLen > MaxSignatureSize {
		return nil, fmt.Errorf("plan bundle: signature of %d bytes: %w", sigLen, ErrLayout)
	}
	l, err := planLayout(m, entries, sigLen)
	if err != nil {
		return nil, fmt.Errorf("plan bundle: %w", err)
	}
	return l, nil
}

// planLayout computes the layout of m, entries and a signature of sigLen bytes.
func planLayout(m *Manifest, entries []Entry, sigLen int) (*Layout, error) {
	if m == nil {
		return nil, errors.New("nil manifest")
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	files := m.Files()
	byPath := make(map[string]*Entry, len(entries))
	for i := range entries {
		e := &entries[i]
		if byPath[e.Path] != nil {
			return nil, fmt.Errorf("entry %s given twice", e.Path)
		}
		byPath[e.Path] = e
	}
	if len(byPath) != len(files) {
		return nil, fmt.Errorf("%d entries for %d files", len(byPath), len(files))
	}
	mb, sb, err := headBytes(m)
	if err != nil {
		return nil, err
	}
	mtime := bundleMtime(m)
	l := &Layout{sigLen: sigLen, index: make(map[string]int, len(files))}
	var off int64
	for _, h := range []struct {
		name string
		n    int
	}{{SumsName, len(sb)}, {SignatureName, sigLen}, {ManifestName, len(mb)}} {
		if h.name == SignatureName && sigLen == 0 {
			continue
		}
		hb, err := renderHeader(h.name, int64(h.n), DefaultMode, mtime)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.name, err)
		}
		off += int64(len(hb)) + padded(int64(h.n))
	}
	l.head = off
	for _, f := range files {
		e := byPath[f.Path]
		switch {
		case e == nil:
			return nil, fmt.Errorf("%s: declared by the manifest but no entry given", f.Path)
		case e.Size != f.Size:
			return nil, fmt.Errorf("%s: entry is %d bytes, manifest says %d", f.Path, e.Size, f.Size)
		case e.Mode&^0o777 != 0 || e.Mode < 0:
			return nil, fmt.Errorf("%s: mode %#o is not a permission (0 to 0777)", f.Path, e.Mode)
		}
		mode := e.Mode
		if mode == 0 {
			mode = DefaultMode
		}
		hb, err := renderHeader(f.Path, f.Size, mode, mtime)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		lf := layoutFile{path: f.Path, size: f.Size, mode: mode, hdrOff: off, headerLen: int64(len(hb))}
		lf.dataOff = off + lf.headerLen
		off = lf.dataOff + padded(f.Size)
		l.index[f.Path] = len(l.files)
		l.files = append(l.files, lf)
	}
	l.size = off + 2*blockSize
	return l, nil
}

// headBytes renders manifest.json and SHA256SUMS for m.
func headBytes(m *Manifest) (mb, sb []byte, err error) {
	mb, err = m.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", ManifestName, err)
	}
	if len(mb) > MaxManifestSize {
		return nil, nil, fmt.Errorf("%s is %d bytes, limit %d", ManifestName, len(mb), MaxManifestSize)
	}
	files := m.Files()
	sums := make([]Sum, 0, len(files)+1)
	sums = append(sums, Sum{Path: ManifestName, SHA256: sha256Hex(mb)})
	for _, f := range files {
		sums = append(sums, Sum{Path: f.Path, SHA256: f.SHA256})
	}
	sb = FormatSums(sums)
	if len(sb) > MaxSumsSize {
		return nil, nil, fmt.Errorf("%s is %d bytes, limit %d", SumsName, len(sb), MaxSumsSize)
	}
	return mb, sb, nil
}

func bundleMtime(m *Manifest) time.Time {
	mtime := m.Created.UTC().Truncate(time.Second)
	if mtime.Before(time.Unix(0, 0)) {
		mtime = time.Unix(0, 0).UTC()
	}
	return mtime
}

func renderHeader(name string, size, mode int64, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	if err := writeHeader(&b, tarHeader(name, size, mode, mtime)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func padded(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }

// Size is the length of the whole bundle.
func (l *Layout) Size() int64 { return l.size }

// HeadSize is the length of the head entries (SHA256SUMS, the signature,
// manifest.json), headers and padding included: the first payload header
// starts there.
func (l *Layout) HeadSize() int64 { return l.head }

// DataOffset returns where the bytes of payload file path start in the
// bundle, and its size.
func (l *Layout) DataOffset(path string) (off, size int64, ok bool) {
	i, ok := l.index[path]
	if !ok {
		return 0, 0, false
	}
	return l.files[i].dataOff, l.files[i].size, true
}

// Sums returns the SHA256SUMS of the bundle of m: what the signature
// passed to WriteHead signs.
func (l *Layout) Sums(m *Manifest) ([]byte, error) {
	if m == nil {
		return nil, errors.New("nil manifest")
	}
	_, sb, err := headBytes(m)
	return sb, err
}

// WriteHead writes everything but the payload bytes into w: the head
// entries for m (with its final hashes and creation time) and sig (nil:
// unsigned), every payload header and padding, and the end of the archive.
// With every payload region already filled, w then holds exactly what
// WriteBundle(m, entries, signer) writes. It fails with ErrLayout, writing
// nothing, when m, entries or sig do not give this layout.
func (l *Layout) WriteHead(w io.WriterAt, m *Manifest, entries []Entry, sig []byte) error {
	if len(sig) > MaxSignatureSize {
		return fmt.Errorf("write head: signature is %d bytes, limit %d", len(sig), MaxSignatureSize)
	}
	for _, e := range entries {
		if !ValidHash(e.SHA256) {
			return fmt.Errorf("write head: %s: sha256 %q is not a hash", e.Path, e.SHA256)
		}
	}
	final, err := planLayout(m, entries, len(sig))
	if err != nil {
		return fmt.Errorf("write head: %w: %w", ErrLayout, err)
	}
	if final.head != l.head || final.size != l.size || len(final.files) != len(l.files) {
		return fmt.Errorf("write head: head %d bytes, planned %d: %w", final.head, l.head, ErrLayout)
	}
	for i, f := range final.files {
		p := l.files[i]
		if f.path != p.path || f.size != p.size || f.hdrOff != p.hdrOff || f.dataOff != p.dataOff {
			return fmt.Errorf("write head: %s: %w", f.path, ErrLayout)
		}
	}
	files := m.Files()
	shaOf := make(map[string]string, len(files))
	for _, f := range files {
		shaOf[f.Path] = f.SHA256
	}
	for _, e := range entries {
		if shaOf[e.Path] != e.SHA256 {
			return fmt.Errorf("write head: %s: entry sha256 %s, manifest says %s", e.Path, e.SHA256, shaOf[e.Path])
		}
	}
	mb, sb, err := headBytes(m)
	if err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	mtime := bundleMtime(m)
	var head bytes.Buffer
	if err := writeHead(&head, sb, sig, mb, mtime); err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	if int64(head.Len()) != l.head {
		return fmt.Errorf("write head: head %d bytes, planned %d: %w", head.Len(), l.head, ErrLayout)
	}
	if _, err := w.WriteAt(head.Bytes(), 0); err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	for _, f := range final.files {
		hb, err := renderHeader(f.path, f.size, f.mode, mtime)
		if err != nil {
			return fmt.Errorf("write head: %s: %w", f.path, err)
		}
		if int64(len(hb)) != f.headerLen {
			return fmt.Errorf("write head: %s: %w", f.path, ErrLayout)
		}
		if _, err := w.WriteAt(hb, f.hdrOff); err != nil {
			return fmt.Errorf("write head: %w", err)
		}
		if pad := padded(f.size) - f.size; pad > 0 {
			if _, err := w.WriteAt(zeroBlock[:pad], f.dataOff+f.size); err != nil {
				return fmt.Errorf("write head: %w", err)
			}
		}
	}
	if _, err := w.WriteAt(make([]byte, 2*blockSize), l.size-2*blockSize); err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	return nil
}
