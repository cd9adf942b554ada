package staging

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/internal/beneath"
)

// Placement works on folder handles: the staging tree belongs to the
// cycle_server account, which may swap any folder in it for a symlink at
// any moment. Every folder on the way to a placed file is opened below the
// root's handle without following symlinks (internal/beneath); folders are
// created, chmod-ed and chown-ed on their own handles; renames name the
// target by its parent's handle; and after each rename, the placed entry
// and its parent are checked to be where they were meant to be. Paths in
// ccmirror's state folder (the temporary folder, backups, records), which
// only root can change, are used by name.

// handles is the set of folder handles one install opened in the staging
// tree, by path relative to the root ("work/staging/projects/slurm/blobs").
type handles struct {
	root *beneath.Dir
	dirs map[string]*beneath.Dir
}

// keep adds a handle for close to close.
func (h *handles) keep(d *beneath.Dir) {
	if h.dirs == nil {
		h.dirs = map[string]*beneath.Dir{}
	}
	h.dirs[fmt.Sprintf("\x00%d", len(h.dirs))] = d
}

func (h *handles) close() {
	for _, d := range h.dirs {
		d.Close()
	}
	h.dirs = nil
}

// relToRoot turns an absolute path inside root into a clean relative one.
func relToRoot(root, p string) (string, bool) {
	if !strings.HasPrefix(p, root+"/") || filepath.Clean(p) != p {
		return "", false
	}
	return strings.TrimPrefix(p, root+"/"), true
}

// folder returns the handle of the folder rel (relative to the root, ""
// for the root itself), creating the missing folders with mkdir, which
// calls back before each one is made (for the journal).
func (h *handles) folder(rel string, mkdir func(rel string, parent *beneath.Dir, name string) (*beneath.Dir, error)) (*beneath.Dir, error) {
	if rel == "" {
		return h.root, nil
	}
	if d := h.dirs[rel]; d != nil {
		return d, nil
	}
	parentRel, name := path.Split(rel)
	parentRel = strings.TrimSuffix(parentRel, "/")
	parent, err := h.folder(parentRel, mkdir)
	if err != nil {
		return nil, err
	}
	d, err := parent.OpenDir(name)
	if errors.Is(err, fs.ErrNotExist) && mkdir != nil {
		d, err = mkdir(rel, parent, name)
	}
	if err != nil {
		if errors.Is(err, beneath.ErrSymlink) {
			return nil, fmt.Errorf("%s is a symlink or not a folder: refusing to stage through it; replace it with a real folder", path.Join(h.root.Name, rel))
		}
		return nil, err
	}
	if h.dirs == nil {
		h.dirs = map[string]*beneath.Dir{}
	}
	h.dirs[rel] = d
	return d, nil
}

// stillThere checks that the folder handle for rel is still the folder the
// root's rel names (same device and inode): a folder moved away while its
// handle was open would have taken what was placed in it elsewhere.
func (h *handles) stillThere(rel string, d *beneath.Dir) error {
	if rel == "" {
		return nil
	}
	want, err := d.Stat()
	if err != nil {
		return err
	}
	again, err := h.root.OpenDir(rel)
	if err != nil {
		return fmt.Errorf("%s was moved or replaced while ccmirror staged into it: %w", path.Join(h.root.Name, rel), err)
	}
	defer again.Close()
	got, err := again.Stat()
	if err != nil {
		return err
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		return fmt.Errorf("%s was replaced while ccmirror staged into it", path.Join(h.root.Name, rel))
	}
	return nil
}

// entryIno is the inode of name in d (not followed), 0 when absent.
func entryIno(d *beneath.Dir, name string) uint64 {
	st, err := d.Lstat(name)
	if err != nil {
		return 0
	}
	return st.Ino
}

// renameInto renames the state-folder path src to name in the folder d;
// noReplace fails rather than replace an existing entry (a file planted
// meanwhile), where the filesystem can say so.
func renameInto(src string, d *beneath.Dir, name string, noReplace bool) error {
	if noReplace {
		err := unix.Renameat2(unix.AT_FDCWD, src, d.Fd(), name, unix.RENAME_NOREPLACE)
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
			return wrapAt("rename", d, name, err)
		}
	}
	return wrapAt("rename", d, name, unix.Renameat(unix.AT_FDCWD, src, d.Fd(), name))
}

// wrapAt names the staged path in an error of an *at call.
func wrapAt(op string, d *beneath.Dir, name string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: path.Join(d.Name, name), Err: err}
}
