package scan

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/manifest"
)

// errArchiveBytes says an archive gave more decompressed bytes than allowed.
var errArchiveBytes = errors.New("decompressed size limit reached")

// budget is a reader that fails once more than n bytes were read.
type budget struct {
	r io.Reader
	n int64
}

func (b *budget) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errArchiveBytes
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

// sourceError marks an error of the underlying reader (disk, network,
// verification of the bundle), which ends the scan, as opposed to damage
// inside an archive.
type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }

// markedReader returns the errors of r as sourceError, so they can be told
// apart after passing through gzip, tar or zip.
type markedReader struct{ r io.Reader }

func (m markedReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = sourceError{err}
	}
	return n, err
}

func isSourceError(err error) bool { return errors.As(err, new(sourceError)) }

// scanArchive scans the scripts inside blob archive name.
func scanArchive(ctx context.Context, c *collector, name string, r io.Reader, size int64) error {
	format := archiveFormat(name)
	if format == "" {
		return nil
	}
	src := markedReader{ctxio.NewReader(ctx, r)}
	var err error
	switch format {
	case "zip":
		err = scanZip(ctx, c, name, r, src, size)
	default:
		var tr io.Reader = src
		if format == "tgz" {
			zr, gerr := gzip.NewReader(src)
			if gerr != nil {
				err = gerr
				break
			}
			defer zr.Close()
			tr = zr
		}
		err = scanTar(ctx, c, name, &budget{r: tr, n: c.lim.MaxArchiveBytes})
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case isSourceError(err):
		return fmt.Errorf("blob %s: %w", name, err)
	case errors.Is(err, errArchiveBytes):
		c.cut(fmt.Sprintf("blobs/%s: more than %d bytes decompressed: the rest was not scanned", name, c.lim.MaxArchiveBytes))
	case errors.Is(err, errStop):
	default:
		c.cut(fmt.Sprintf("blobs/%s: not a readable %s archive (%v): its scripts were not scanned", name, format, oneLineErr(err)))
	}
	return nil
}

func oneLineErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Join(strings.Fields(s), " ")
}

// innerName cleans an archive entry name for a finding's File; ok is false
// for names that climb out of the archive.
func innerName(n string) (string, bool) {
	n = strings.TrimPrefix(strings.ReplaceAll(n, "\\", "/"), "./")
	n = strings.TrimLeft(n, "/")
	if n == "" {
		return "", false
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

func scanTar(ctx context.Context, c *collector, name string, r io.Reader) error {
	tr := tar.NewReader(r)
	entries, links := 0, 0
	defer func() {
		if links > 0 {
			c.note(fmt.Sprintf("blobs/%s: %s inside, not followed", name, plural(links, "link", "links")))
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return err
		}
		entries++
		if entries > c.lim.MaxArchiveEntries {
			c.cut(fmt.Sprintf("blobs/%s: more than %d entries: the rest were not scanned", name, c.lim.MaxArchiveEntries))
			return errStop
		}
		switch h.Typeflag {
		case tar.TypeReg, '\x00':
		case tar.TypeSymlink, tar.TypeLink:
			links++
			continue
		default:
			continue
		}
		inner, ok := innerName(h.Name)
		if !ok {
			continue
		}
		file := "blobs/" + name + "!" + inner
		if err := scanFile(ctx, c, file, "", inner, h.Size, tr); err != nil {
			return err
		}
	}
}

// scanZip reads a zip blob. A zip needs random access: raw is used when
// it is an io.ReaderAt of known size (a staged file), else the stream src
// is copied to a temporary file of at most MaxSpool bytes first.
func scanZip(ctx context.Context, c *collector, name string, raw io.Reader, src io.Reader, size int64) error {
	var ra io.ReaderAt
	if f, ok := raw.(io.ReaderAt); ok && size >= 0 {
		ra = f
	} else {
		tmp, err := os.CreateTemp("", "ccmirror-scan-*.zip")
		if err != nil {
			return sourceError{fmt.Errorf("blob %s: %w", name, err)}
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		n, err := io.Copy(tmp, io.LimitReader(src, c.lim.MaxSpool+1))
		if err != nil {
			if isSourceError(err) || ctx.Err() != nil {
				return err
			}
			return sourceError{fmt.Errorf("spool to %s: %w", tmp.Name(), err)}
		}
		if n > c.lim.MaxSpool {
			c.cut(fmt.Sprintf("blobs/%s: zip larger than %d bytes: not scanned", name, c.lim.MaxSpool))
			return errStop
		}
		ra, size = tmp, n
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return err
	}
	left := c.lim.MaxArchiveBytes
	links := 0
	for i, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if i >= c.lim.MaxArchiveEntries {
			c.cut(fmt.Sprintf("blobs/%s: more than %d entries: the rest were not scanned", name, c.lim.MaxArchiveEntries))
			break
		}
		mode := f.Mode()
		if mode&os.ModeSymlink != 0 {
			links++
			continue
		}
		if !mode.IsRegular() {
			continue
		}
		inner, ok := innerName(f.Name)
		if !ok {
			continue
		}
		if left <= 0 {
			return errArchiveBytes
		}
		rc, err := f.Open()
		if err != nil {
			c.cut(fmt.Sprintf("blobs/%s!%s: cannot read (%v): not scanned", name, inner, oneLineErr(err)))
			continue
		}
		b := &budget{r: rc, n: left}
		err = scanFile(ctx, c, "blobs/"+name+"!"+inner, "", inner, int64(f.UncompressedSize64), b)
		rc.Close()
		left = b.n
		if err != nil {
			if errors.Is(err, errArchiveBytes) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.cut(fmt.Sprintf("blobs/%s!%s: cannot read (%v): not scanned", name, inner, oneLineErr(err)))
		}
	}
	if links > 0 {
		c.note(fmt.Sprintf("blobs/%s: %s inside, not followed", name, plural(links, "link", "links")))
	}
	return nil
}

// TagArchive returns the Tree of a GitHub tag archive (gzip tar, every
// entry under one top folder "<repo>-<tag>/", which is stripped), read
// from r once. Links and other non-regular entries come with Skip set.
// Damage to the archive is an error wrapping manifest.ErrVerify.
func TagArchive(r io.Reader) Tree { return tagArchive{r} }

type tagArchive struct{ r io.Reader }

func (t tagArchive) Walk(ctx context.Context, visit func(Entry) error) error {
	src := markedReader{ctxio.NewReader(ctx, t.r)}
	fail := func(err error) error {
		var se sourceError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &se):
			return se.err
		}
		return fmt.Errorf("source archive: %w: %v", manifest.ErrVerify, err)
	}
	zr, err := gzip.NewReader(src)
	if err != nil {
		return fail(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return fail(err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader || h.Typeflag == tar.TypeDir {
			continue
		}
		n, ok := innerName(h.Name)
		if !ok {
			continue
		}
		_, rel, found := strings.Cut(n, "/")
		if !found || rel == "" {
			continue // not under the top folder
		}
		e := Entry{Path: rel, Size: h.Size}
		switch h.Typeflag {
		case tar.TypeReg, '\x00':
			e.Open = func() (io.Reader, error) { return archiveReader{tr}, nil }
		case tar.TypeSymlink:
			e.Skip = "symbolic link"
		case tar.TypeLink:
			e.Skip = "hard link"
		default:
			e.Skip = "special file"
		}
		if err := visit(e); err != nil {
			if err == errStop {
				return nil
			}
			if errors.As(err, new(archiveError)) {
				return fail(err)
			}
			return err
		}
	}
}

// archiveError marks a failure to read an entry of a tag archive, so the
// walk reports it as damage rather than as the visitor's own error.
type archiveError struct{ err error }

func (e archiveError) Error() string { return e.err.Error() }
func (e archiveError) Unwrap() error { return e.err }

type archiveReader struct{ r io.Reader }

func (a archiveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		err = archiveError{err}
	}
	return n, err
}
