// Package beneath works inside a folder tree that someone else can change
// while ccmirror works in it (the staging tree belongs to the cycle_server
// account), without ever following a symbolic link: every path is resolved
// relative to an open folder handle, with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) where the kernel has it and a walk of
// openat(O_NOFOLLOW) calls where it does not. A folder swapped for a
// symlink, even between two calls, makes the next call fail; it never sends
// it elsewhere. Files are opened without blocking (O_NONBLOCK) and only
// regular files are handed out, so a FIFO or device never hangs a reader.
package beneath

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/ccmirror/ccmirror/internal/regfile"
	"golang.org/x/sys/unix"
)

// ErrSymlink marks a path with a symbolic link (or something else that is
// not a folder) where a folder was expected.
var ErrSymlink = errors.New("a symbolic link or not a folder where a folder belongs")

// Dir is an open folder handle. Name is its path, for messages only: it is
// never used to reach the folder.
type Dir struct {
	fd   int
	Name string
}

// OpenDir opens the folder at path (an absolute path chosen by the
// administrator, such as the CycleCloud root; symlinks in it are followed
// this once) and returns its handle.
func OpenDir(p string) (*Dir, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return &Dir{fd: fd, Name: p}, nil
}

// Close closes the handle.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Fd is the handle's descriptor, for *at system calls. It stays owned by d.
func (d *Dir) Fd() int { return d.fd }

// Stat is fstat on the handle.
func (d *Dir) Stat() (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: d.Name, Err: err}
	}
	return &st, nil
}

func (d *Dir) join(rel string) string { return path.Join(d.Name, rel) }

var noOpenat2 atomic.Bool

// openat resolves rel below dirfd without following any symlink and
// without leaving dirfd, and opens it with flags.
func openat(dirfd int, rel string, flags int) (int, error) {
	if rel == "" || path.IsAbs(rel) || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") {
		if rel != "." {
			return -1, unix.EINVAL
		}
	}
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{Flags: uint64(flags),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
		switch {
		case errors.Is(err, unix.ENOSYS):
			noOpenat2.Store(true)
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			// the kernel saw a concurrent rename: resolve again by hand
		default:
			return fd, err
		}
	}
	// Fallback: one O_NOFOLLOW|O_DIRECTORY step per element.
	parts := strings.Split(rel, "/")
	cur, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for i, el := range parts {
		f := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags
		}
		next, err := unix.Openat(cur, el, f, 0)
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// loopErr turns the errors a symlink in the way produces into ErrSymlink.
func loopErr(op, p string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
		return &fs.PathError{Op: op, Path: p, Err: ErrSymlink}
	}
	return &fs.PathError{Op: op, Path: p, Err: err}
}

// OpenDir opens the folder rel below d.
func (d *Dir) OpenDir(rel string) (*Dir, error) {
	fd, err := openat(d.fd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, loopErr("open", d.join(rel), err)
	}
	return &Dir{fd: fd, Name: d.join(rel)}, nil
}

// NotRegularError is returned by Open for anything but a regular file.
type NotRegularError struct {
	Path string
	Type fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file", e.Path, regfile.Describe(e.Type))
}

// Open opens the regular file rel below d for reading, without following a
// symlink and without blocking; anything else is a *NotRegularError (a
// symlink, FIFO or device is never opened for reading).
func (d *Dir) Open(rel string) (*os.File, error) {
	p := d.join(rel)
	fd, err := openat(d.fd, rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if errors.Is(err, unix.ELOOP) {
		// The file itself, or a folder on the way?
		if dir := path.Dir(rel); dir != "." {
			pfd, perr := openat(d.fd, dir, unix.O_RDONLY|unix.O_DIRECTORY)
			if perr != nil {
				return nil, loopErr("open", p, perr)
			}
			unix.Close(pfd)
		}
		return nil, &NotRegularError{Path: p, Type: fs.ModeSymlink}
	}
	if err != nil {
		return nil, loopErr("open", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &NotRegularError{Path: p, Type: ModeType(st.Mode)}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// Lstat is fstatat(AT_SYMLINK_NOFOLLOW) of the entry name directly in d
// (name has no "/").
func (d *Dir) Lstat(name string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: d.join(name), Err: err}
	}
	return &st, nil
}

// Entry is one thing in a folder, as the folder lists it (not followed).
type Entry struct {
	Name string
	Type fs.FileMode // fs.ModeDir, fs.ModeSymlink, 0 for regular, ...
}

// ReadDir lists d, sorted by name; types come from lstat on the handle.
func (d *Dir) ReadDir() ([]Entry, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.Name, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.Name)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		st, err := d.Lstat(n)
		if errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: n, Type: ModeType(st.Mode)})
	}
	return out, nil
}

// WalkFunc is called by Walk for every entry below the walked folder, with
// its slash-separated path relative to it, the folder that holds it and its
// lstat. Returning fs.SkipDir from a folder skips it.
type WalkFunc func(rel string, parent *Dir, name string, st *unix.Stat_t) error

// Walk visits everything below d, depth first in name order, opening each
// folder on its parent's handle (never following a symlink).
func (d *Dir) Walk(ctx context.Context, fn WalkFunc) error {
	return d.walk(ctx, "", fn)
}

func (d *Dir) walk(ctx context.Context, prefix string, fn WalkFunc) error {
	es, err := d.ReadDir()
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return err
		}
		st, err := d.Lstat(e.Name)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		rel := e.Name
		if prefix != "" {
			rel = prefix + "/" + e.Name
		}
		err = fn(rel, d, e.Name, st)
		if errors.Is(err, fs.SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		sub, err := d.OpenDir(e.Name)
		if err != nil {
			return err
		}
		err = sub.walk(ctx, rel, fn)
		sub.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// ModeType turns a stat st_mode file type into an fs.FileMode type.
func ModeType(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return 0
}
