package mirror

import (
	"archive/tar"
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

// maxProjectINI bounds the project.ini read from an archive.
const maxProjectINI = 4 << 20

// sourceScan is what one pass over a tag archive found.
type sourceScan struct {
	top        string          // the archive's top folder ("cyclecloud-slurm-2.5.0")
	projectINI []byte          // <top>/project.ini
	blobs      map[string]bool // regular files under <top>/blobs/, relative to it
}

// splitTop splits a tar entry name into its top folder and the rest.
func splitTop(name string) (top, rest string) {
	name = strings.TrimPrefix(name, "./")
	top, rest, _ = strings.Cut(name, "/")
	return top, rest
}

// errStopWalk ends walkArchive early without an error.
var errStopWalk = errors.New("stop")

// walkArchive streams a gzip tar tag archive, calling fn for each entry with
// the reader of its content; fn returns errStopWalk to end early. Damage to
// the archive is a verification error.
func walkArchive(ctx context.Context, r io.Reader, fn func(h *tar.Header, tr *tar.Reader) error) error {
	zr, err := gzip.NewReader(ctxio.NewReader(ctx, r))
	if err != nil {
		return fmt.Errorf("source archive: %w: %v", manifest.ErrVerify, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("source archive: %w: %v", manifest.ErrVerify, err)
		}
		if err := fn(h, tr); err != nil {
			if err == errStopWalk {
				return nil
			}
			return err
		}
	}
}

// scanArchive streams a gzip tar tag archive once, keeping project.ini and
// the names of the files committed under blobs/.
func scanArchive(ctx context.Context, file string) (*sourceScan, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return scanArchiveReader(ctx, f)
}

func scanArchiveReader(ctx context.Context, r io.Reader) (*sourceScan, error) {
	s := &sourceScan{blobs: map[string]bool{}}
	err := walkArchive(ctx, r, func(h *tar.Header, tr *tar.Reader) error {
		if h.Typeflag == tar.TypeXGlobalHeader || h.Typeflag == tar.TypeXHeader {
			return nil
		}
		top, rest := splitTop(h.Name)
		if top == "" {
			return nil
		}
		if s.top == "" {
			s.top = top
		}
		if top != s.top || h.Typeflag != tar.TypeReg {
			return nil
		}
		switch {
		case rest == "project.ini":
			if h.Size > maxProjectINI {
				return fmt.Errorf("source archive: project.ini is %d bytes, more than %d", h.Size, maxProjectINI)
			}
			b, err := io.ReadAll(io.LimitReader(tr, maxProjectINI+1))
			if err != nil {
				return fmt.Errorf("source archive: project.ini: %w: %v", manifest.ErrVerify, err)
			}
			s.projectINI = b
		case strings.HasPrefix(rest, "blobs/"):
			name := strings.TrimPrefix(rest, "blobs/")
			if manifest.ValidBlobName(name) && path.Clean(name) == name {
				s.blobs[name] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.projectINI == nil {
		if s.top == "" {
			return nil, errors.New("source archive is empty")
		}
		return nil, fmt.Errorf("source archive has no %s/project.ini: not a CycleCloud project", s.top)
	}
	return s, nil
}

// extractBlobs copies the named files under <top>/blobs/ into the cache,
// returning their objects by name.
func extractBlobs(ctx context.Context, c *cache, file, top string, names map[string]bool) (map[string]object, error) {
	out := map[string]object{}
	if len(names) == 0 {
		return out, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	err = walkArchive(ctx, f, func(h *tar.Header, tr *tar.Reader) error {
		t, rest := splitTop(h.Name)
		name, ok := strings.CutPrefix(rest, "blobs/")
		if t != top || !ok || h.Typeflag != tar.TypeReg || !names[name] {
			return nil
		}
		if _, dup := out[name]; dup {
			return nil
		}
		sha, n, err := c.put(ctx, tr)
		if err != nil {
			return fmt.Errorf("source archive: blobs/%s: %w", name, err)
		}
		out[name] = object{SHA256: sha, Size: n}
		if len(out) == len(names) {
			return errStopWalk
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("source archive: blobs/%s vanished on second read", n)
		}
	}
	return out, nil
}
