package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/diskhint"
	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/manifest"
)

// writeBundle writes the bundle to a temporary file beside out, syncs it
// and renames it into place; on any failure or cancellation the temporary
// file is removed and out is untouched.
func (f *Fetcher) writeBundle(ctx context.Context, out string, m *manifest.Manifest, entries []manifest.Entry) (err error) {
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return fmt.Errorf("fetch: output %s is a directory", out)
	}
	tmp, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return fmt.Errorf("fetch: %w", localOr(out, err))
	}
	defer tmp.Abort()
	// Reads stop at cancellation even inside one large payload file
	// (verified entries are copied in chunks that check it).
	wrapped := make([]manifest.Entry, len(entries))
	for i, e := range entries {
		if e.Verified {
			wrapped[i] = e
			continue
		}
		open := e.Open
		e.Open = func() (io.ReadCloser, error) {
			rc, err := open()
			if err != nil {
				return nil, err
			}
			return ctxReadCloser{ctxio.NewReader(ctx, rc), rc}, nil
		}
		wrapped[i] = e
	}
	// Unbuffered: verified payloads go from cache file to bundle file in
	// the kernel; the rest is written in large chunks.
	if err = manifest.WriteBundle(ctx, &writebackFile{File: tmp.File}, m, wrapped, f.o.Signer); err != nil {
		return fmt.Errorf("fetch: write %s: %w", out, localOr(out, ctxErr(ctx, err)))
	}
	if err = ctx.Err(); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err = tmp.Commit(); err != nil {
		return fmt.Errorf("fetch: %w", localOr(out, err))
	}
	return nil
}

// localOr names a failure of the local disk under path as a local fault
// (path and errno); other errors pass unchanged.
func localOr(path string, err error) error {
	var no syscall.Errno
	if err == nil || errors.Is(err, manifest.ErrVerify) || !errors.As(err, &no) {
		return err
	}
	return errclass.Local("write", path, err)
}

// writebackChunk is how many bytes a download or a bundle writes between
// two diskhint.StartWriteback calls.
const writebackChunk = 8 << 20

// writebackFile starts the disk writing of what is written to it every
// writebackChunk bytes, so the fsync that ends the bundle finds little
// left. ReadFrom keeps os.File's in-kernel copy.
type writebackFile struct {
	*os.File
	off, kicked int64
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.File.Write(p)
	w.advance(int64(n))
	return n, err
}

func (w *writebackFile) ReadFrom(r io.Reader) (int64, error) {
	n, err := w.File.ReadFrom(r)
	w.advance(n)
	return n, err
}

func (w *writebackFile) advance(n int64) {
	w.off += n
	if w.off-w.kicked >= writebackChunk {
		diskhint.StartWriteback(w.File, w.kicked, w.off-w.kicked)
		w.kicked = w.off
	}
}

type ctxReadCloser struct {
	io.Reader
	io.Closer
}

// sweepTemps removes the temporary files that fetches killed while
// writing out left beside it: atomicfile's .NAME.tmp-* and the
// NAME.partial-* of earlier versions. A file still locked belongs to a
// fetch under way and stays (see atomicfile.RemoveAbandoned).
func (f *Fetcher) sweepTemps(out string) {
	dir, base := filepath.Dir(out), filepath.Base(out)
	var names []string
	for _, pat := range []string{atomicfile.TempPrefix(out) + "*", base + ".partial-*"} {
		m, _ := filepath.Glob(filepath.Join(dir, globEscape(filepath.Base(pat))))
		names = append(names, m...)
	}
	for _, name := range names {
		atomicfile.RemoveAbandoned(name, func(size int64) {
			f.log.Info("sweeping a temporary file an interrupted fetch left", "path", name, "size", size)
		})
	}
}

// globEscape quotes the glob metacharacters of a file name, keeping a
// trailing "*".
func globEscape(pat string) string {
	star := strings.HasSuffix(pat, "*")
	pat = strings.TrimSuffix(pat, "*")
	var b strings.Builder
	for _, c := range pat {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	if star {
		b.WriteByte('*')
	}
	return b.String()
}
