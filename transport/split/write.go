package split

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/ctxio"

	"github.com/ccmirror/ccmirror/manifest"
)

// bufSize is the copy buffer for splitting and joining.
const bufSize = 1 << 20

// Split cuts the bundle at bundlePath into parts of partSize bytes (the last
// one may be shorter; a bundle no larger than partSize gives one part) and
// writes them, the part list and, when signer is not nil, the list's
// signature into dir ("" means the bundle's own folder). The bundle is read
// once: each part and the whole bundle are hashed while copying. Each file
// is written under a temporary name and renamed when complete; the list is
// written last, so a list on disk means every part it names is complete.
// On any error, or when ctx is cancelled, every file Split wrote is removed.
// A nil signer writes an unsigned list (and removes a stale signature).
func Split(ctx context.Context, bundlePath, dir string, partSize int64, signer manifest.Signer) (_ *List, err error) {
	if partSize <= 0 {
		return nil, fmt.Errorf("split %s: part size %d must be positive", bundlePath, partSize)
	}
	bundle := filepath.Base(bundlePath)
	if err := validBundleName(bundle); err != nil {
		return nil, fmt.Errorf("split %s: %w", bundlePath, err)
	}
	if dir == "" {
		dir = filepath.Dir(bundlePath)
	}
	src, err := os.Open(bundlePath)
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("split %s: not a regular file", bundlePath)
	}
	size := fi.Size()
	count := partCount(size, partSize)
	if count > int64(maxParts) {
		return nil, fmt.Errorf("split %s: %d parts of %d bytes is more than the %d allowed; use a larger part size", bundlePath, count, partSize, maxParts)
	}

	var written []string // final names and temporaries to remove on failure
	defer func() {
		if err != nil {
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()

	l := &List{Schema: Schema, Bundle: bundle, Size: size, PartSize: partSize, Count: int(count)}
	whole := sha256.New()
	buf := make([]byte, bufSize)
	in := ctxio.NewReader(ctx, src)
	for i := 1; i <= int(count); i++ {
		n := min(partSize, size-int64(i-1)*partSize)
		name := PartName(bundle, i, int(count))
		partHash := sha256.New()
		err := writeFile(ctx, dir, name, &written, func(w io.Writer) error {
			got, err := io.CopyBuffer(io.MultiWriter(w, partHash, whole), io.LimitReader(in, n), buf)
			if err != nil {
				return err
			}
			if got != n {
				return fmt.Errorf("%s: bundle ended after %d of %d bytes (changed while splitting?)", bundlePath, int64(i-1)*partSize+got, size)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("split %s: %s: %w", bundlePath, name, err)
		}
		l.Parts = append(l.Parts, Part{Name: name, Size: n, SHA256: sum(partHash)})
	}
	if k, err := src.Read(buf[:1]); k != 0 || !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("split %s: bundle grew while splitting (more than %d bytes)", bundlePath, size)
	}
	l.SHA256 = sum(whole)
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("split %s: %w", bundlePath, err)
	}
	b, err := l.Marshal()
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", bundlePath, err)
	}
	listName := ListName(bundle)
	sigName := listName + SigSuffix
	if signer != nil {
		sig, err := signer.Sign(b)
		if err != nil {
			return nil, fmt.Errorf("split %s: sign %s: %w", bundlePath, listName, err)
		}
		if err := writeBytes(ctx, dir, sigName, sig, &written); err != nil {
			return nil, fmt.Errorf("split %s: %w", bundlePath, err)
		}
	}
	if err := writeBytes(ctx, dir, listName, b, &written); err != nil {
		return nil, fmt.Errorf("split %s: %w", bundlePath, err)
	}
	if signer == nil {
		// A signature left from an earlier split would not match this list.
		if err := os.Remove(filepath.Join(dir, sigName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("split %s: remove stale signature: %w", bundlePath, err)
		}
	}
	_ = atomicfile.SyncDir(dir) // best effort: FAT32 cannot sync a folder on some platforms
	return l, nil
}

// maxParts bounds the number of parts so names stay readable and a list
// stays small; a million parts of even 1 MiB is a terabyte.
const maxParts = 999_999

func sum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func writeBytes(ctx context.Context, dir, name string, b []byte, written *[]string) error {
	err := writeFile(ctx, dir, name, written, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// writeFile creates dir/name through a temporary file in dir that fill
// writes, synced and renamed into place once complete. Both the temporary
// and the final path are appended to written so the caller can remove them.
func writeFile(ctx context.Context, dir, name string, written *[]string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	*written = append(*written, f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(f.Name(), final); err != nil {
		return err
	}
	*written = append(*written, final)
	return nil
}
