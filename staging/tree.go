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
	"sort"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"github.com/ccmirror/ccmirror/internal/ctxio"
	"golang.org/x/sys/unix"
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
// hashing regular files. It works on handles (internal/beneath): no
// symlink is followed, even if a folder is swapped for one meanwhile.
func walkTree(ctx context.Context, dir *beneath.Dir) ([]treeEntry, error) {
	var out []treeEntry
	err := dir.Walk(ctx, func(rel string, parent *beneath.Dir, name string, st *unix.Stat_t) error {
		mode := fs.FileMode(st.Mode & 0o777)
		e := treeEntry{Path: rel, Mode: modeString(mode)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.Type = typeFile
			e.Size = st.Size
			f, err := parent.Open(name)
			if err != nil {
				return err
			}
			e.SHA256, _, err = hashOpen(ctx, f, st.Size)
			f.Close()
			if err != nil {
				return err
			}
		case unix.S_IFDIR:
			e.Type = typeDir
		case unix.S_IFLNK:
			e.Type = typeSymlink
			target, err := readlinkAt(parent, name)
			if err != nil {
				return err
			}
			e.Target = target
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

// readlinkAt reads the symlink name in d.
func readlinkAt(d *beneath.Dir, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(d.Fd(), name, buf)
	if err != nil {
		return "", fmt.Errorf("readlink %s/%s: %w", d.Name, name, err)
	}
	return string(buf[:n]), nil
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

// errSizeDiffers says a staged file no longer has the size its install
// record gives, so it was not read.
var errSizeDiffers = errors.New("size differs from the install record")

// hashOpen returns the hex SHA-256 of the open regular file f. When size >=
// 0 it refuses (errSizeDiffers) without reading a file whose size, taken on
// the handle, is not size: a file swapped for a huge or sparse one costs
// nothing.
func hashOpen(ctx context.Context, f *os.File, size int64) (string, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if size >= 0 && fi.Size() != size {
		return "", fi.Size(), fmt.Errorf("%s: %w", f.Name(), errSizeDiffers)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxio.NewReader(ctx, f), make([]byte, 256<<10))
	if err != nil {
		return "", n, fmt.Errorf("hash %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// hashAt hashes the regular file rel below d (see hashOpen). A symlink,
// FIFO or device is a *beneath.NotRegularError and never read.
func hashAt(ctx context.Context, d *beneath.Dir, rel string, size int64) (string, int64, error) {
	f, err := d.Open(rel)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return hashOpen(ctx, f, size)
}
