package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Size limits of the head entries. A reader refuses larger entries before
// reading them, so a hostile bundle cannot make it allocate more.
const (
	MaxSumsSize      = 16 << 20 // SHA256SUMS
	MaxSignatureSize = 64 << 10 // SHA256SUMS.sig
	MaxManifestSize  = 64 << 20 // manifest.json
)

// copyBufSize is the buffer used to stream payload bytes.
const copyBufSize = 128 << 10

// DefaultMode is the permission of a payload file when Entry.Mode is 0.
const DefaultMode = 0o644

// Entry is one payload file handed to WriteBundle: its bundle path, the size
// and SHA-256 the manifest declares, and how to open its bytes.
type Entry struct {
	Path   string
	Size   int64
	SHA256 string
	Mode   int64 // permission bits; 0 means DefaultMode (0644)
	Open   func() (io.ReadCloser, error)
	// Verified says the bytes behind Open were hashed against SHA256 when
	// they were stored and cannot have changed since (the caller holds
	// proof, e.g. a content-addressed cache object with an intact stamp).
	// WriteBundle then copies them without hashing them again, only
	// checking their size, and in the kernel (copy_file_range) when Open
	// returns an *os.File and the bundle is written to an *os.File.
	Verified bool
}

// Signer signs the bytes of SHA256SUMS and returns an armored OpenSSH
// signature ("-----BEGIN SSH SIGNATURE-----", namespace "ccmirror").
// manifest/trust implements it.
type Signer interface {
	Sign(msg []byte) ([]byte, error)
}

// WriteBundle writes bundle format v1 to w: SHA256SUMS, SHA256SUMS.sig
// (only when signer is not nil), manifest.json, then the payload sorted by
// path, as one plain POSIX tar (regular files, mode from Entry, uid/gid 0,
// no user names, mtime = m.Created). entries must match m.Files() exactly by
// path, size and SHA-256. Each payload is hashed again while it is copied
// (unless Entry.Verified): bytes that differ from Entry.SHA256 or
// Entry.Size fail with ErrVerify. Write to an unbuffered *os.File to let
// verified payloads move in the kernel.
// On error w holds a partial bundle; write to a temporary file and rename.
func WriteBundle(ctx context.Context, w io.Writer, m *Manifest, entries []Entry, signer Signer) error {
	if m == nil {
		return errors.New("write bundle: nil manifest")
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("write bundle: manifest: %w", err)
	}
	files := m.Files()
	byPath := make(map[string]*Entry, len(entries))
	for i := range entries {
		e := &entries[i]
		if byPath[e.Path] != nil {
			return fmt.Errorf("write bundle: entry %s given twice", e.Path)
		}
		byPath[e.Path] = e
	}
	for _, f := range files {
		e := byPath[f.Path]
		switch {
		case e == nil:
			return fmt.Errorf("write bundle: %s: declared by the manifest but no entry given", f.Path)
		case e.Size != f.Size || e.SHA256 != f.SHA256:
			return fmt.Errorf("write bundle: %s: entry is %d bytes sha256 %s, manifest says %d bytes sha256 %s",
				f.Path, e.Size, e.SHA256, f.Size, f.SHA256)
		case e.Open == nil:
			return fmt.Errorf("write bundle: %s: entry has no Open function", f.Path)
		case e.Mode&^0o777 != 0 || e.Mode < 0:
			return fmt.Errorf("write bundle: %s: mode %#o is not a permission (0 to 0777)", f.Path, e.Mode)
		}
	}
	if len(byPath) != len(files) {
		declared := make(map[string]bool, len(files))
		for _, f := range files {
			declared[f.Path] = true
		}
		for _, e := range entries {
			if !declared[e.Path] {
				return fmt.Errorf("write bundle: entry %s is not declared by the manifest", e.Path)
			}
		}
	}

	mb, sb, err := headBytes(m)
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	var sig []byte
	if signer != nil {
		if sig, err = signer.Sign(sb); err != nil {
			return fmt.Errorf("write bundle: sign %s: %w", SumsName, err)
		}
		if len(sig) == 0 || len(sig) > MaxSignatureSize {
			return fmt.Errorf("write bundle: signature is %d bytes, want 1 to %d", len(sig), MaxSignatureSize)
		}
	}

	mtime := bundleMtime(m)
	// Each entry is its tar header (rendered by archive/tar), its bytes
	// and zero padding to the 512-byte block, written straight to w, so
	// payload bytes can move file to file in the kernel; the output is
	// byte for byte what a tar.Writer produces.
	if err := writeHead(w, sb, sig, mb, mtime); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	var buf []byte
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
		e := byPath[f.Path]
		if !e.Verified && buf == nil {
			buf = make([]byte, copyBufSize)
		}
		if err := writePayload(ctx, w, e, mtime, buf); err != nil {
			return fmt.Errorf("write bundle: %s: %w", f.Path, err)
		}
	}
	// The end of archive: two zero blocks, as tar.Writer.Close writes.
	if _, err := w.Write(make([]byte, 2*blockSize)); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}

const blockSize = 512

// writeHead writes the head entries, SHA256SUMS, the signature (when there
// is one) and manifest.json, each with its header and padding.
func writeHead(w io.Writer, sb, sig, mb []byte, mtime time.Time) error {
	for _, h := range []struct {
		name string
		b    []byte
	}{{SumsName, sb}, {SignatureName, sig}, {ManifestName, mb}} {
		if h.b == nil {
			continue
		}
		if err := writeHeader(w, tarHeader(h.name, int64(len(h.b)), DefaultMode, mtime)); err != nil {
			return fmt.Errorf("%s: %w", h.name, err)
		}
		if _, err := w.Write(h.b); err != nil {
			return fmt.Errorf("%s: %w", h.name, err)
		}
		if err := writePadding(w, int64(len(h.b))); err != nil {
			return fmt.Errorf("%s: %w", h.name, err)
		}
	}
	return nil
}

// writeHeader writes hdr's tar header blocks (PAX records included when
// archive/tar needs them) to w.
func writeHeader(w io.Writer, hdr *tar.Header) error {
	var b bytes.Buffer
	// A tar.Writer per header: only its header output is used, the
	// writer is dropped before it expects the entry's bytes.
	if err := tar.NewWriter(&b).WriteHeader(hdr); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

var zeroBlock [blockSize]byte

// writePadding fills the last block of an entry of n bytes with zeros.
func writePadding(w io.Writer, n int64) error {
	if pad := (blockSize - n%blockSize) % blockSize; pad > 0 {
		_, err := w.Write(zeroBlock[:pad])
		return err
	}
	return nil
}

func tarHeader(name string, size, mode int64, mtime time.Time) *tar.Header {
	// Format left unset: archive/tar picks USTAR, or PAX for a path longer
	// than USTAR can hold. Uid, Gid, Uname and Gname stay zero/empty.
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     mode,
		ModTime:  mtime,
	}
}

func writePayload(ctx context.Context, w io.Writer, e *Entry, mtime time.Time, buf []byte) (err error) {
	rc, err := e.Open()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	mode := e.Mode
	if mode == 0 {
		mode = DefaultMode
	}
	if err := writeHeader(w, tarHeader(e.Path, e.Size, mode, mtime)); err != nil {
		return err
	}
	if e.Verified {
		err = copyVerified(ctx, w, rc, e.Size)
	} else {
		err = copyHashed(ctx, w, rc, e, buf)
	}
	if err != nil {
		return err
	}
	return writePadding(w, e.Size)
}

// verifiedChunk bounds one in-kernel copy, so cancellation is noticed
// between chunks.
const verifiedChunk = 64 << 20

// copyVerified copies exactly size bytes of an already verified file. With
// an *os.File on both sides io.CopyN becomes copy_file_range (sendfile or
// splice where that is refused): no byte passes through user space.
func copyVerified(ctx context.Context, w io.Writer, r io.Reader, size int64) error {
	var n int64
	for n < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := io.CopyN(w, r, min(size-n, verifiedChunk))
		n += k
		if err == io.EOF {
			return fmt.Errorf("content is %d bytes, want %d: %w", n, size, ErrVerify)
		}
		if err != nil {
			return err
		}
	}
	var one [1]byte
	if k, rerr := io.ReadFull(r, one[:]); k > 0 {
		return fmt.Errorf("content is longer than %d bytes: %w", size, ErrVerify)
	} else if rerr != nil && rerr != io.EOF {
		return rerr
	}
	return nil
}

// copyHashed copies e's bytes through buf, hashing them, and fails with
// ErrVerify when they are not what e declares.
func copyHashed(ctx context.Context, w io.Writer, rc io.Reader, e *Entry, buf []byte) error {
	h := sha256.New()
	var n int64
	for n < e.Size {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, rerr := rc.Read(buf[:min(int64(len(buf)), e.Size-n)])
		if k > 0 {
			h.Write(buf[:k])
			if _, err := w.Write(buf[:k]); err != nil {
				return err
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			if n < e.Size {
				return fmt.Errorf("content is %d bytes, want %d: %w", n, e.Size, ErrVerify)
			}
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	var one [1]byte
	if k, rerr := io.ReadFull(rc, one[:]); k > 0 {
		return fmt.Errorf("content is longer than %d bytes: %w", e.Size, ErrVerify)
	} else if rerr != nil && rerr != io.EOF {
		return rerr
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
		return fmt.Errorf("sha256 %s, want %s: %w", got, e.SHA256, ErrVerify)
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
