package split

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/manifest"
)

// maxListBytes bounds how much of a ".parts" file is read; a list of
// maxParts parts is well below it.
const maxListBytes = 256 << 20

// errClosed is returned by Read after Close.
var errClosed = errors.New("split: read after close")

// Open checks a split bundle and returns a reader of the joined bundle
// bytes, so a split bundle can be verified or installed without joining it
// to disk first. listOrFirstPart is the ".parts" file or the first part
// (".001"); the list is found beside it.
//
// Before returning, Open verifies the list's signature with verify (a nil
// verify accepts an unsigned or unchecked list: pass nil only when the
// caller deliberately skips signature checks), parses the list strictly and
// checks that every part is present with its listed size, naming every part
// that is missing or has the wrong size. The reader then streams the parts
// in order, hashing each one; as soon as a part's last byte is read and its
// sha256 differs from the list, Read returns an error naming that part. The
// whole bundle's sha256 is checked before Read returns io.EOF, so a caller
// must read to io.EOF for the check to be complete. All verification
// failures wrap manifest.ErrVerify. The reader stops with ctx's error once
// ctx is done.
func Open(ctx context.Context, listOrFirstPart string, verify func(msg, sig []byte) error) (io.ReadCloser, *List, error) {
	l, dir, err := load(listOrFirstPart, verify)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return &partsReader{ctx: ctx, dir: dir, l: l, part: sha256.New(), whole: sha256.New()}, l, nil
}

// Join checks a split bundle like Open does and writes the joined bundle to
// out (replacing an existing file there). It writes a temporary file beside
// out and renames it only after every part's sha256 and the whole bundle's
// sha256 matched, so a missing, short or corrupt part (named in the error,
// which wraps manifest.ErrVerify) or a cancelled ctx leaves no output.
func Join(ctx context.Context, listOrFirstPart, out string, verify func(msg, sig []byte) error) (err error) {
	if out == "" {
		return fmt.Errorf("join %s: no output file given", listOrFirstPart)
	}
	rc, l, err := Open(ctx, listOrFirstPart, verify)
	if err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	defer rc.Close()
	if err := notAnInput(out, rc.(*partsReader).dir, l); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// Hide *os.File's ReadFrom so the 1 MiB buffer is used.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, rc, make([]byte, bufSize)); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	_ = atomicfile.SyncDir(filepath.Dir(out)) // best effort: FAT32 cannot sync a folder on some platforms
	return nil
}

// notAnInput refuses an output path that is one of the split bundle's own
// files, which the rename would otherwise replace.
func notAnInput(out, dir string, l *List) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	names := []string{ListName(l.Bundle), ListName(l.Bundle) + SigSuffix}
	for _, p := range l.Parts {
		names = append(names, p.Name)
	}
	for _, n := range names {
		if a, err := filepath.Abs(filepath.Join(dir, n)); err == nil && a == abs {
			return fmt.Errorf("output %s would overwrite part of the split bundle", out)
		}
	}
	return nil
}

// load finds, verifies and parses the list for listOrFirstPart and checks
// that every part is present with its listed size. It returns the list and
// the folder holding the parts.
func load(listOrFirstPart string, verify func(msg, sig []byte) error) (*List, string, error) {
	listPath, err := ListPath(listOrFirstPart)
	if err != nil {
		return nil, "", err
	}
	fromPart := listPath != listOrFirstPart
	b, err := readSmall(listPath)
	if err != nil {
		if fromPart && errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%s: missing part list (expected beside %s): %w", listPath, filepath.Base(listOrFirstPart), manifest.ErrVerify)
		}
		return nil, "", err
	}
	if verify != nil {
		sigPath := listPath + SigSuffix
		sig, err := readSmall(sigPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%s: missing signature (the split bundle is unsigned): %w", sigPath, manifest.ErrVerify)
		}
		if err != nil {
			return nil, "", err
		}
		if err := verify(b, sig); err != nil {
			if errors.Is(err, manifest.ErrVerify) {
				return nil, "", fmt.Errorf("%s: %w", sigPath, err)
			}
			return nil, "", fmt.Errorf("%s: %w: %w", sigPath, manifest.ErrVerify, err)
		}
	}
	l, err := ParseList(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", listPath, err)
	}
	if base := filepath.Base(listOrFirstPart); fromPart && base != l.Parts[0].Name {
		return nil, "", fmt.Errorf("%s: first part is %s, not %s: %w", listPath, l.Parts[0].Name, base, manifest.ErrVerify)
	}
	dir := filepath.Dir(listPath)
	var problems []string
	for _, p := range l.Parts {
		fi, err := os.Stat(filepath.Join(dir, p.Name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, p.Name+": missing")
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", p.Name, err))
		case !fi.Mode().IsRegular():
			problems = append(problems, p.Name+": not a regular file")
		case fi.Size() != p.Size:
			problems = append(problems, fmt.Sprintf("%s: size %d, want %d", p.Name, fi.Size(), p.Size))
		}
	}
	if len(problems) > 0 {
		return nil, "", fmt.Errorf("%s: %d of %d parts unusable: %s: %w", l.Bundle, len(problems), l.Count, strings.Join(problems, "; "), manifest.ErrVerify)
	}
	return l, dir, nil
}

// readSmall reads a list or signature file, refusing absurdly large ones.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxListBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a part list: %w", path, maxListBytes, manifest.ErrVerify)
	}
	return b, nil
}

// partsReader streams the parts of a checked list in order, hashing each.
type partsReader struct {
	ctx   context.Context
	dir   string
	l     *List
	i     int      // index of the part being read (or next to open)
	f     *os.File // open part, nil between parts
	left  int64    // bytes of the open part still to read
	part  hash.Hash
	whole hash.Hash
	err   error // sticky: io.EOF, a verification failure, errClosed
}

func (r *partsReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	for r.f == nil {
		if r.i == len(r.l.Parts) {
			r.err = io.EOF
			if got := sum(r.whole); got != r.l.SHA256 {
				r.err = fmt.Errorf("%s: sha256 mismatch of the joined bundle: got %s, want %s: %w", r.l.Bundle, got, r.l.SHA256, manifest.ErrVerify)
			}
			return 0, r.err
		}
		if err := r.openPart(); err != nil {
			r.err = err
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.f.Read(p)
	r.part.Write(p[:n])
	r.whole.Write(p[:n])
	r.left -= int64(n)
	name := r.l.Parts[r.i].Name
	switch {
	case r.left == 0:
		r.err = r.finishPart()
	case errors.Is(err, io.EOF):
		r.err = fmt.Errorf("%s: ended %d bytes early (changed while reading?): %w", name, r.left, manifest.ErrVerify)
	case err != nil:
		r.err = fmt.Errorf("%s: %w", name, err)
	}
	return n, r.err
}

// openPart opens part r.i; an empty part is checked and skipped at once.
func (r *partsReader) openPart() error {
	p := r.l.Parts[r.i]
	f, err := os.Open(filepath.Join(r.dir, p.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: missing: %w", p.Name, manifest.ErrVerify)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	r.f, r.left = f, p.Size
	r.part.Reset()
	if p.Size == 0 {
		return r.finishPart()
	}
	return nil
}

// finishPart closes the current part and checks its hash.
func (r *partsReader) finishPart() error {
	p := r.l.Parts[r.i]
	r.f.Close()
	r.f = nil
	r.i++
	if got := sum(r.part); got != p.SHA256 {
		return fmt.Errorf("%s: sha256 mismatch: got %s, want %s: %w", p.Name, got, p.SHA256, manifest.ErrVerify)
	}
	return nil
}

// Close releases the open part; reading after Close fails.
func (r *partsReader) Close() error {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	if r.err == nil || r.err == io.EOF {
		r.err = errClosed
	}
	return nil
}
