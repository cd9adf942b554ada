package mirror

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/ctxio"
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
		return fmt.Errorf("fetch: %w", err)
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
		return fmt.Errorf("fetch: write %s: %w", out, ctxErr(ctx, err))
	}
	if err = ctx.Err(); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err = tmp.Commit(); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	return nil
}

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
		startWriteback(w.File, w.kicked, w.off-w.kicked)
		w.kicked = w.off
	}
}

type ctxReadCloser struct {
	io.Reader
	io.Closer
}
