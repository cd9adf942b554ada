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
	"github.com/ccmirror/ccmirror/internal/diskhint"
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
// in order while another goroutine reads them ahead and hashes each part
// (each byte once); right after a part's last byte, when its hash differs
// from the list, Read returns an error naming that part. Every part is checked before Read returns io.EOF,
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

// Chunks the parts are read in: one being handed out, the others read
// ahead (and hashed) or waiting.
const (
	readChunk  = 1 << 20
	readChunks = 4
	// prefetch is how far from a part's end the next part's first bytes
	// are asked of the disk, and how many of them (page cache, not memory
	// of ccmirror's).
	prefetch = 8 << 20
)

// Reader streams the parts of a checked list in order (see Open). A loader
// goroutine reads the parts ahead of the consumer in chunks and hashes each
// chunk before handing it over, so reading and the part hashes run off the
// consumer's goroutine, each byte hashed once.
type Reader struct {
	ctx   context.Context
	dir   string
	l     *List
	ready chan chunk  // chunks read and hashed, in order, then the end
	free  chan []byte // chunks the consumer is done with
	quit  chan struct{}
	done  chan struct{} // closed when the loader has returned
	stop  sync.Once
	cur   []byte // chunk being handed out
	off   int
	err   error  // sticky: io.EOF, a verification failure, errClosed
	sum   string // the joined bundle's sha256, once every part matched
}

// chunk is what the loader hands over: bytes read (and hashed), or the end
// of the stream: err (io.EOF with sum, or the first failure).
type chunk struct {
	buf []byte
	err error
	sum string
}

func newPartsReader(ctx context.Context, dir string, l *List, whole bool) *Reader {
	r := &Reader{
		ctx:   ctx,
		dir:   dir,
		l:     l,
		ready: make(chan chunk, readChunks),
		free:  make(chan []byte, readChunks),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	for range readChunks {
		r.free <- make([]byte, readChunk)
	}
	ld := &loader{r: r, part: sha256.New()}
	if whole {
		ld.whole = sha256.New()
	}
	go ld.run()
	return r
}

// loader reads the parts in order into free chunks, hashes them and sends
// them to the consumer. After a part's last chunk it sends the part's
// verdict when its sha256 differs from the list, so no byte of a later part
// reaches the consumer before that part was proved.
type loader struct {
	r     *Reader
	part  hash.Hash
	whole hash.Hash // nil: the joined bundle's hash is not checked
}

func (ld *loader) run() {
	defer close(ld.r.done)
	sum, err := ld.load()
	if err == nil {
		err = io.EOF
	}
	ld.send(chunk{err: err, sum: sum})
}

// send hands c to the consumer unless the reader was closed or ctx is
// done; it reports whether c was sent.
func (ld *loader) send(c chunk) bool {
	select {
	case ld.r.ready <- c:
		return true
	case <-ld.r.quit:
	case <-ld.r.ctx.Done():
	}
	return false
}

// errStopped ends the loader when the reader was closed or ctx is done;
// the consumer does not see it (it has its own reason to stop).
var errStopped = errors.New("split: loader stopped")

// load reads every part and returns the joined bundle's sha256.
func (ld *loader) load() (string, error) {
	for i := range ld.r.l.Parts {
		if err := ld.loadPart(i); err != nil {
			return "", err
		}
	}
	l := ld.r.l
	if ld.whole != nil {
		if got := sum(ld.whole); got != l.SHA256 {
			return "", fmt.Errorf("%s: sha256 mismatch of the joined bundle: got %s, want %s: %w", l.Bundle, got, l.SHA256, manifest.ErrVerify)
		}
	}
	// Every part matched the list: the joined bytes are the ones listed,
	// whose sha256 the list gives (with a signed list, as its signer
	// computed it when splitting; an unchecked one was checked above).
	return l.SHA256, nil
}

// loadPart reads, hashes and sends part i, checking its size and sha256.
func (ld *loader) loadPart(i int) error {
	p := ld.r.l.Parts[i]
	f, err := os.Open(filepath.Join(ld.r.dir, p.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: missing: %w", p.Name, manifest.ErrVerify)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	defer f.Close()
	diskhint.Sequential(f)
	ld.part.Reset()
	prefetched := false
	for left := p.Size; ; {
		if !prefetched && left <= prefetch && i+1 < len(ld.r.l.Parts) {
			// Near this part's end, have the kernel start on the next
			// one: its readahead would otherwise begin cold at its open.
			next := ld.r.l.Parts[i+1]
			diskhint.WillNeed(filepath.Join(ld.r.dir, next.Name), min(next.Size, prefetch))
			prefetched = true
		}
		var buf []byte
		select {
		case buf = <-ld.r.free:
		case <-ld.r.quit:
			return errStopped
		case <-ld.r.ctx.Done():
			return errStopped
		}
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), left)])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: ended %d bytes early (changed while reading?): %w", p.Name, left-int64(n), manifest.ErrVerify)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		left -= int64(n)
		ld.part.Write(buf[:n])
		if ld.whole != nil {
			ld.whole.Write(buf[:n])
		}
		if n > 0 && !ld.send(chunk{buf: buf[:n]}) {
			return errStopped
		}
		if n == 0 {
			ld.r.free <- buf
		}
		if left == 0 {
			// The verdict follows the part's last bytes, before any byte
			// of the next part: an error names the part right at its end.
			if got := sum(ld.part); got != p.SHA256 {
				return fmt.Errorf("%s: sha256 mismatch: got %s, want %s: %w", p.Name, got, p.SHA256, manifest.ErrVerify)
			}
			return nil
		}
	}
}

// Read hands out the joined bundle's bytes; see Open for what is checked
// before io.EOF.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.off == len(r.cur) {
		if r.cur != nil {
			r.free <- r.cur[:cap(r.cur)]
			r.cur = nil
		}
		var c chunk
		select {
		case c = <-r.ready:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		if c.err != nil {
			if c.err == io.EOF {
				r.sum = c.sum
			}
			r.err = c.err
			return 0, c.err
		}
		r.cur, r.off = c.buf, 0
	}
	n := copy(p, r.cur[r.off:])
	r.off += n
	return n, nil
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

// Close stops the loader (which closes the open part) and waits for it;
// reading after Close fails.
func (r *Reader) Close() error {
	r.stop.Do(func() { close(r.quit) })
	<-r.done
	if r.err == nil || r.err == io.EOF {
		r.err = errClosed
	}
	return nil
}
