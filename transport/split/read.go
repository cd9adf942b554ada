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
	"sync"

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
// in order while another goroutine hashes each part (each byte once); once
// that hash is done and differs from the list, the next Read returns an
// error naming that part. Every part is checked before Read returns io.EOF,
// so a caller must read to io.EOF for the check to be complete. With a
// signed list, parts matching it are the bytes the signer listed, so the
// joined bundle's sha256 is not computed a second time; an unchecked list
// (nil verify) has it checked too. All verification failures wrap
// manifest.ErrVerify. The reader stops with ctx's error once ctx is done.
// Once it returned io.EOF, its SHA256 method gives the joined bundle's
// sha256, so a consumer need not hash the bytes again.
func Open(ctx context.Context, listOrFirstPart string, verify func(msg, sig []byte) error) (*Reader, *List, error) {
	l, dir, err := load(listOrFirstPart, verify)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return newPartsReader(ctx, dir, l, verify == nil), l, nil
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
	if err := notAnInput(out, rc.dir, l); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	f, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	defer f.Abort()
	// Hide *os.File's ReadFrom so the 1 MiB buffer is used.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, rc, make([]byte, bufSize)); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("join %s: %w", listOrFirstPart, err)
	}
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

// Chunks the parts are read in: one being handed out, the others hashed
// or waiting.
const (
	readChunk  = 1 << 20
	readChunks = 4
)

// Reader streams the parts of a checked list in order (see Open); a hasher
// goroutine checks each part's sha256 off the reading goroutine.
type Reader struct {
	ctx  context.Context
	dir  string
	l    *List
	i    int      // index of the part being read (or next to open)
	f    *os.File // open part, nil between parts
	left int64    // bytes of the open part still to read
	h    *partHasher
	// ended: a part's last bytes went to the hasher and its verdict is
	// awaited before any byte of the next part is handed out, so an error
	// names the part right at its end.
	ended bool
	cur   []byte // chunk being handed out
	off   int
	err   error  // sticky: io.EOF, a verification failure, errClosed
	sum   string // the joined bundle's sha256, once every part matched
}

func newPartsReader(ctx context.Context, dir string, l *List, whole bool) *Reader {
	h := &partHasher{
		l:    l,
		part: sha256.New(),
		work: make(chan hashJob, readChunks+1),
		free: make(chan []byte, readChunks),
		done: make(chan struct{}),
		ends: make(chan struct{}, 1),
	}
	if whole {
		h.whole = sha256.New()
	}
	for range readChunks {
		h.free <- make([]byte, readChunk)
	}
	go h.run()
	return &Reader{ctx: ctx, dir: dir, l: l, h: h}
}

// hashJob is bytes of part `part` to hash, in order; end says they are its
// last.
type hashJob struct {
	buf  []byte
	part int
	end  bool
}

// partHasher hashes what the reader read, part by part, and keeps the
// first mismatch.
type partHasher struct {
	l     *List
	part  hash.Hash
	whole hash.Hash // nil: the joined bundle's hash is not checked
	work  chan hashJob
	free  chan []byte // chunks hashed, for the reader to fill again
	done  chan struct{}
	ends  chan struct{} // one for each part checked
	stop  sync.Once

	mu  sync.Mutex
	bad error // the first part (or the joined bundle) not matching the list
}

func (h *partHasher) run() {
	defer close(h.done)
	for j := range h.work {
		if j.buf != nil {
			h.part.Write(j.buf)
			if h.whole != nil {
				h.whole.Write(j.buf)
			}
			h.free <- j.buf[:cap(j.buf)]
		}
		if !j.end {
			continue
		}
		p := h.l.Parts[j.part]
		if got := sum(h.part); got != p.SHA256 {
			h.fail(fmt.Errorf("%s: sha256 mismatch: got %s, want %s: %w", p.Name, got, p.SHA256, manifest.ErrVerify))
		}
		h.part.Reset()
		h.ends <- struct{}{}
	}
}

func (h *partHasher) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bad == nil {
		h.bad = err
	}
}

func (h *partHasher) failed() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bad
}

// finish waits for every byte sent to be hashed and returns the first
// mismatch, the joined bundle's included, or the joined bundle's sha256.
func (h *partHasher) finish() (string, error) {
	h.close()
	if err := h.failed(); err != nil {
		return "", err
	}
	if h.whole != nil {
		if got := sum(h.whole); got != h.l.SHA256 {
			return "", fmt.Errorf("%s: sha256 mismatch of the joined bundle: got %s, want %s: %w", h.l.Bundle, got, h.l.SHA256, manifest.ErrVerify)
		}
	}
	// Every part matched the list: the joined bytes are the ones listed,
	// whose sha256 the list gives (with a signed list, as its signer
	// computed it when splitting; an unchecked one was checked above).
	return h.l.SHA256, nil
}

// close ends the hasher and waits for it.
func (h *partHasher) close() {
	h.stop.Do(func() { close(h.work) })
	<-h.done
}

func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if err := r.h.failed(); err != nil {
		r.err = err
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.off == len(r.cur) {
		if err := r.fill(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.cur[r.off:])
	r.off += n
	return n, nil
}

// fill reads the next chunk of bytes into r.cur and hands it to the
// hasher; at the end of the last part it waits for the hasher and returns
// io.EOF or the first mismatch.
func (r *Reader) fill() error {
	for r.f == nil {
		if r.ended {
			select {
			case <-r.h.ends:
			case <-r.ctx.Done():
				return r.ctx.Err()
			}
			r.ended = false
			if err := r.h.failed(); err != nil {
				return err
			}
		}
		if r.i == len(r.l.Parts) {
			sum, err := r.h.finish()
			if err != nil {
				return err
			}
			r.sum = sum
			return io.EOF
		}
		if err := r.openPart(); err != nil {
			return err
		}
	}
	// The chunk handed out last may still be hashed: take a free one
	// (it came back only once hashed, and the reader is done with it).
	var buf []byte
	select {
	case buf = <-r.h.free:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	name := r.l.Parts[r.i].Name
	n, err := io.ReadFull(r.f, buf[:min(int64(len(buf)), r.left)])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		r.h.free <- buf
		return fmt.Errorf("%s: ended %d bytes early (changed while reading?): %w", name, r.left-int64(n), manifest.ErrVerify)
	}
	if err != nil {
		r.h.free <- buf
		return fmt.Errorf("%s: %w", name, err)
	}
	r.left -= int64(n)
	end := r.left == 0
	r.h.work <- hashJob{buf: buf[:n], part: r.i, end: end}
	if end {
		r.f.Close()
		r.f = nil
		r.i++
		r.ended = true
	}
	r.cur, r.off = buf[:n], 0
	return nil
}

// openPart opens part r.i; an empty part is checked and skipped at once.
func (r *Reader) openPart() error {
	p := r.l.Parts[r.i]
	f, err := os.Open(filepath.Join(r.dir, p.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: missing: %w", p.Name, manifest.ErrVerify)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	if p.Size == 0 {
		f.Close()
		r.h.work <- hashJob{part: r.i, end: true}
		r.i++
		r.ended = true
		return nil
	}
	r.f, r.left = f, p.Size
	return nil
}

// errNotRead is SHA256's error before the reader returned io.EOF.
var errNotRead = errors.New("split: the joined bundle's sha256 is known only once every part was read and checked")

// SHA256 returns the joined bundle's hex sha256 once Read returned io.EOF,
// which it does only after every part matched its listed size and sha256:
// the bytes read are then the ones the list describes, so their sha256 is
// the list's (checked against a hash of every byte read when the list's
// signature was not checked). It costs no hashing: a consumer that wants
// the whole bundle's sha256 takes it from here instead of hashing each byte
// a second time. Before io.EOF, or when reading failed, it returns an
// error; it still answers after Close.
func (r *Reader) SHA256() (string, error) {
	if r.sum == "" {
		return "", errNotRead
	}
	return r.sum, nil
}

// Close releases the open part and stops the hasher; reading after Close
// fails.
func (r *Reader) Close() error {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.h.close()
	if r.err == nil || r.err == io.EOF {
		r.err = errClosed
	}
	return nil
}
