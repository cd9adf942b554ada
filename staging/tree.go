package staging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/regfile"
)

// Entry types of a staged tree.
const (
	typeFile    = "file"
	typeDir     = "dir"
	typeSymlink = "symlink"
	typeOther   = "other"
)

// treeEntry describes one thing in a version folder.
type treeEntry struct {
	Path   string `json:"path"` // slash-separated, relative to the version folder
	Type   string `json:"type"`
	Mode   string `json:"mode"` // permission bits, octal, e.g. "0755"
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Target string `json:"target,omitempty"` // symlinks
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", uint32(m.Perm())) }

// same reports whether two entries would look identical to CycleCloud:
// same type, permission bits, content and link target.
func (e treeEntry) same(o treeEntry) bool {
	return e.Type == o.Type && e.Mode == o.Mode && e.SHA256 == o.SHA256 && e.Target == o.Target && e.Size == o.Size
}

// walkTree lists everything below dir (not dir itself), sorted by path,
// hashing regular files and never following symlinks.
func walkTree(ctx context.Context, dir string) ([]treeEntry, error) {
	var out []treeEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := treeEntry{Path: filepath.ToSlash(rel), Mode: modeString(info.Mode())}
		switch {
		case info.Mode().IsRegular():
			e.Type = typeFile
			e.Size = info.Size()
			if e.SHA256, err = hashFile(ctx, p); err != nil {
				return err
			}
		case info.IsDir():
			e.Type = typeDir
		case info.Mode()&fs.ModeSymlink != 0:
			e.Type = typeSymlink
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			e.Type = typeOther
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// reasonNotInBundle explains a staged path the bundle's version lacks.
const reasonNotInBundle = "staged but not in the bundle"

// diffTrees compares a freshly built version folder with the staged one and
// returns one plan item per path, and whether the two are identical.
// Differences are conflicts, or replace/remove when force is set.
func diffTrees(built, staged []treeEntry, force bool) ([]PlanItem, bool) {
	old := make(map[string]treeEntry, len(staged))
	for _, e := range staged {
		old[e.Path] = e
	}
	identical := len(built) == len(staged)
	items := make([]PlanItem, 0, len(built))
	differ := ActionConflict
	if force {
		differ = ActionReplace
	}
	for _, e := range built {
		it := PlanItem{Path: e.Path, Type: e.Type, Mode: e.Mode, Size: e.Size, SHA256: e.SHA256, Target: e.Target}
		o, ok := old[e.Path]
		switch {
		case !ok:
			it.Action = ActionAdd
			identical = false
		case e.same(o):
			it.Action = ActionSkip
		default:
			it.Action = differ
			it.Reason = describeDiff(e, o)
			identical = false
		}
		delete(old, e.Path)
		items = append(items, it)
	}
	var extra []PlanItem
	for _, o := range old {
		it := PlanItem{Path: o.Path, Type: o.Type, Mode: o.Mode, Size: o.Size, SHA256: o.SHA256, Target: o.Target,
			Action: ActionConflict, Reason: reasonNotInBundle}
		if force {
			it.Action = ActionRemove
		}
		extra = append(extra, it)
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Path < extra[j].Path })
	items = append(items, extra...)
	sort.SliceStable(items, func(i, j int) bool { return items[i].Path < items[j].Path })
	return items, identical
}

func describeDiff(n, o treeEntry) string {
	switch {
	case n.Type != o.Type:
		return fmt.Sprintf("staged %s, bundle has a %s", o.Type, n.Type)
	case n.SHA256 != o.SHA256 || n.Size != o.Size:
		return fmt.Sprintf("content differs (staged sha256 %s)", short(o.SHA256))
	case n.Target != o.Target:
		return fmt.Sprintf("staged link points to %s", o.Target)
	default:
		return fmt.Sprintf("mode differs (staged %s)", o.Mode)
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// hashFile returns the hex SHA-256 of the regular file at p. It opens p
// without following a symlink and without blocking on a FIFO or device
// (internal/regfile): anything but a regular file is an error naming it.
func hashFile(ctx context.Context, p string) (string, error) {
	sum, _, err := hashBounded(ctx, p, -1)
	return sum, err
}

// errSizeDiffers says a staged file no longer has the size its install
// record gives, so it was not read.
var errSizeDiffers = errors.New("size differs from the install record")

// hashBounded is hashFile that, when size >= 0, refuses (errSizeDiffers)
// without reading a file whose size, taken on the opened handle, is not
// size: a file swapped for a huge or sparse one costs nothing.
func hashBounded(ctx context.Context, p string, size int64) (string, int64, error) {
	f, err := regfile.Open(p, regfile.Options{NoFollow: true})
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if size >= 0 && fi.Size() != size {
		return "", fi.Size(), fmt.Errorf("%s: %w", p, errSizeDiffers)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxio.NewReader(ctx, f), make([]byte, 256<<10))
	if err != nil {
		return "", n, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
