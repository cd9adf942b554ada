package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/manifest"
)

// RootOptions says what to scan in a staging tree.
type RootOptions struct {
	// Filters are NAME or NAME@VERSION; empty: every staged version.
	Filters []string
	Limits  Limits
}

// maxTreeDepth bounds the folders walked in a staged version.
const maxTreeDepth = 32

// ProjectsDir is where CycleCloud's staged projects live under a root (the
// same path staging.ProjectsDir gives; scan does not import staging).
func ProjectsDir(root string) string { return filepath.Join(root, "work", "staging", "projects") }

// ScanRoot scans the project versions staged under
// ROOT/work/staging/projects/<name>/<version>/ (the built layout:
// <spec>/cluster-init/**, <spec>/chef/**, project.ini; blobs in
// <name>/blobs/). The tree is treated as hostile: nothing is followed
// through a symbolic link, every file is opened with O_NOFOLLOW|O_NONBLOCK
// and checked to be a regular file on the open handle, and links, FIFOs,
// devices and sockets are skipped with a note. Findings name files as in
// the source (specs/<spec>/cluster-init/…). A blob is satisfied when it is
// a regular file in the project's blobs folder. A missing root or an
// unknown filter is an error wrapping errclass.ErrUsage.
func ScanRoot(ctx context.Context, root string, o RootOptions) (*Report, error) {
	lim := o.Limits.orDefault()
	dir := ProjectsDir(root)
	pfd, err := openDirPath(dir)
	if err != nil {
		return nil, usageErrorf("scan --root %s: no staging tree at %s (%v)", root, dir, errnoText(err))
	}
	defer unix.Close(pfd)
	want := map[string]map[string]bool{} // name -> versions ("" = all)
	for _, f := range o.Filters {
		n, v, _ := strings.Cut(f, "@")
		if !manifest.ValidName(n) || (v != "" && !manifest.ValidName(v)) {
			return nil, usageErrorf("scan: %q is not NAME or NAME@VERSION", f)
		}
		if want[n] == nil {
			want[n] = map[string]bool{}
		}
		want[n][v] = true
	}
	names, err := listDir(pfd, lim.MaxArchiveEntries)
	if err != nil {
		return nil, fmt.Errorf("read %s: %v", dir, errnoText(err))
	}
	rep := &Report{Inputs: []Input{{Name: root, Trust: "staging tree (what install staged; no signature to check)"}}}
	h := &rootHolder{ctx: ctx, pfd: pfd, dir: dir, lim: lim, held: map[string][]string{}}
	matched := map[string]bool{}
	for _, name := range names {
		if len(want) > 0 && want[name] == nil {
			continue
		}
		kind, err := statAt(pfd, name)
		if err != nil || kind != "directory" || !manifest.ValidName(name) {
			continue
		}
		nfd, err := openDirAt(pfd, name)
		if err != nil {
			continue
		}
		versions, err := listDir(nfd, lim.MaxArchiveEntries)
		if err != nil {
			unix.Close(nfd)
			return nil, fmt.Errorf("read %s: %v", filepath.Join(dir, name), errnoText(err))
		}
		for _, v := range versions {
			if v == "blobs" || !manifest.ValidName(v) {
				continue
			}
			if len(want) > 0 && !want[name][""] && !want[name][v] {
				continue
			}
			if kind, err := statAt(nfd, v); err != nil || kind != "directory" {
				continue
			}
			matched[name] = true
			matched[name+"@"+v] = true
			p, err := scanStaged(ctx, h, nfd, name, v, lim)
			if err != nil {
				unix.Close(nfd)
				return nil, err
			}
			p.From = filepath.Join(dir, name, v)
			rep.Projects = append(rep.Projects, *p)
		}
		unix.Close(nfd)
	}
	for _, f := range o.Filters {
		if !matched[f] {
			return nil, usageErrorf("scan: nothing staged under %s matches %s", dir, f)
		}
	}
	sort.SliceStable(rep.Projects, func(i, j int) bool {
		a, b := rep.Projects[i], rep.Projects[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return manifest.CompareVersions(a.Version, b.Version) < 0
	})
	return rep, nil
}

// scanStaged scans one staged version folder.
func scanStaged(ctx context.Context, h *rootHolder, nfd int, name, version string, lim Limits) (*Project, error) {
	vfd, err := openDirAt(nfd, version)
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %v", name, version, errnoText(err))
	}
	defer unix.Close(vfd)
	label := name + "/" + version
	p, err := ScanTree(ctx, name, version, &stagedTree{fd: vfd, label: label, lim: lim}, lim)
	if err != nil {
		return nil, err
	}
	c := newCollector(lim)
	c.merge(p.Findings, p.Notes, p.Incomplete)

	// The blobs this version names (project.ini), scanned when staged.
	var listed []string
	ini, err := readINI(vfd, lim)
	switch {
	case err != nil:
		// The parse error may quote the file; say only that it failed.
		c.note(fmt.Sprintf("%s/project.ini: %s: scanning every staged blob archive", label, iniProblem(err)))
		listed, _ = h.Blobs(name)
	default:
		listed = ini.Blobs
	}
	held, _ := h.Blobs(name)
	isHeld := map[string]bool{}
	for _, b := range held {
		isHeld[b] = true
	}
	for _, b := range listed {
		if !IsArchive(b) || !isHeld[b] {
			continue
		}
		if err := h.scanBlob(ctx, c, name, b); err != nil {
			return nil, err
		}
	}
	for _, n := range h.notes(name) {
		c.note(n)
	}
	p.Findings, p.Notes, p.Incomplete = c.findings, c.notes, c.incomplete
	Resolve(p, h)
	sortFindings(p.Findings)
	return p, nil
}

// iniProblem says why project.ini was not used without quoting it.
func iniProblem(err error) string {
	var pe iniOpenError
	if errors.As(err, &pe) {
		return pe.msg
	}
	return "not a valid project.ini"
}

// iniOpenError is a failure to open project.ini (not to parse it).
type iniOpenError struct{ msg string }

func (e iniOpenError) Error() string { return e.msg }

// readINI reads a staged version's project.ini safely.
func readINI(vfd int, lim Limits) (*manifest.ProjectINI, error) {
	f, skip, err := openFileAt(vfd, "project.ini", "project.ini")
	if err != nil {
		return nil, iniOpenError{errnoText(err)}
	}
	if skip != "" {
		return nil, iniOpenError{skip + ", not read"}
	}
	defer f.Close()
	return manifest.ParseProjectINI(io.LimitReader(f, lim.MaxFileSize), "project.ini")
}

// rootHolder answers which blobs are staged, per project, reading each
// project's blobs folder once.
type rootHolder struct {
	ctx    context.Context
	pfd    int
	dir    string
	lim    Limits
	held   map[string][]string
	skips  map[string][]string
	listed map[string]bool
}

func (h *rootHolder) Blobs(project string) ([]string, string) {
	where := "staged in projects/" + project + "/blobs"
	if h.listed[project] {
		return h.held[project], where
	}
	if h.listed == nil {
		h.listed, h.skips = map[string]bool{}, map[string][]string{}
	}
	h.listed[project] = true
	if !manifest.ValidName(project) {
		return nil, where
	}
	nfd, err := openDirAt(h.pfd, project)
	if err != nil {
		return nil, where
	}
	defer unix.Close(nfd)
	bfd, err := openDirAt(nfd, "blobs")
	if err != nil {
		return nil, where
	}
	t := &stagedTree{fd: bfd, label: project + "/blobs", lim: h.lim, all: true}
	err = t.Walk(h.ctx, func(e Entry) error {
		if e.Skip != "" {
			h.skips[project] = append(h.skips[project], fmt.Sprintf("%s/blobs/%s: %s, not counted as staged", project, e.Path, e.Skip))
			return nil
		}
		h.held[project] = append(h.held[project], e.Path)
		return nil
	})
	unix.Close(bfd)
	if err != nil {
		h.skips[project] = append(h.skips[project], fmt.Sprintf("%s/blobs: %v", project, err))
	}
	return h.held[project], where
}

// notes returns, once, what listing a project's blobs skipped.
func (h *rootHolder) notes(project string) []string {
	n := h.skips[project]
	delete(h.skips, project)
	return n
}

// scanBlob scans one staged blob archive of project.
func (h *rootHolder) scanBlob(ctx context.Context, c *collector, project, blob string) error {
	nfd, err := openDirAt(h.pfd, project)
	if err != nil {
		return nil
	}
	defer unix.Close(nfd)
	f, skip, err := openPath(nfd, "blobs/"+blob)
	if err != nil || skip != "" {
		c.cut(fmt.Sprintf("blobs/%s: cannot open safely (%s): not scanned", blob, orText(skip, err)))
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s/blobs/%s: %w", project, blob, err)
	}
	as, err := ScanArchive(ctx, blob, f, st.Size(), c.lim)
	if err != nil {
		return fmt.Errorf("%s/blobs/%s: %w", project, blob, err)
	}
	c.merge(as.Findings, as.Notes, as.Incomplete)
	return nil
}

func orText(skip string, err error) string {
	if skip != "" {
		return skip
	}
	return errnoText(err)
}

// stagedTree walks a staged version folder, mapping the built layout back
// to source paths: <spec>/cluster-init/… → specs/<spec>/cluster-init/….
// With all, it walks everything and keeps paths as they are (a blobs folder).
type stagedTree struct {
	fd    int
	label string
	lim   Limits
	all   bool
}

func (t *stagedTree) Walk(ctx context.Context, visit func(Entry) error) error {
	count := 0
	var walk func(fd int, rel string, depth int) error
	walk = func(fd int, rel string, depth int) error {
		names, err := listDir(fd, t.lim.MaxArchiveEntries)
		if err != nil {
			return visit(Entry{Path: rel, Skip: "unreadable folder (" + errnoText(err) + ")"})
		}
		for _, n := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			count++
			if count > t.lim.MaxArchiveEntries {
				return errStop
			}
			p := path.Join(rel, n)
			if !t.all && !t.wanted(p) {
				continue
			}
			kind, err := statAt(fd, n)
			if err != nil {
				continue
			}
			switch kind {
			case "directory":
				if depth >= maxTreeDepth {
					if err := visit(Entry{Path: t.source(p), Skip: fmt.Sprintf("folder deeper than %d levels", maxTreeDepth)}); err != nil {
						return err
					}
					continue
				}
				cfd, err := openDirAt(fd, n)
				if err != nil {
					if err := visit(Entry{Path: t.source(p), Skip: "folder that cannot be opened safely (" + errnoText(err) + ")"}); err != nil {
						return err
					}
					continue
				}
				err = walk(cfd, p, depth+1)
				unix.Close(cfd)
				if err != nil {
					return err
				}
			case "regular file":
				f, skip, err := openFileAt(fd, n, p)
				if err != nil {
					skip = "file that cannot be opened safely (" + errnoText(err) + ")"
				}
				e := Entry{Path: t.source(p), Skip: skip}
				if f != nil {
					if st, err := f.Stat(); err == nil {
						e.Size = st.Size()
					}
					e.Open = func() (io.Reader, error) { return f, nil }
				}
				err = visit(e)
				if f != nil {
					f.Close()
				}
				if err != nil {
					return err
				}
			default:
				if err := visit(Entry{Path: t.source(p), Skip: kind}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(t.fd, "", 0)
	if err == errStop {
		return visit(Entry{Path: t.label, Skip: fmt.Sprintf("more than %d entries: the rest were not walked", t.lim.MaxArchiveEntries)})
	}
	return err
}

// wanted reports whether a staged path may hold node-side files or
// templates (so the walk does not read the rest).
func (t *stagedTree) wanted(p string) bool {
	el := strings.Split(p, "/")
	switch {
	case el[0] == "templates", el[0] == "project.ini":
		return true
	case len(el) == 1:
		return true // a spec folder
	default:
		return el[1] == "cluster-init" || el[1] == "chef"
	}
}

// source maps a staged path to its source path.
func (t *stagedTree) source(p string) string {
	if t.all {
		return p
	}
	el := strings.SplitN(p, "/", 3)
	if len(el) >= 2 && (el[1] == "cluster-init" || el[1] == "chef") {
		return "specs/" + p
	}
	return p
}

// statAt names what name is in the folder fd, without following a link.
func statAt(fd int, name string) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return "", err
	}
	return fileKind(st.Mode), nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "special file"
}

const openFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC

// openDirAt opens folder name of fd without following a link.
func openDirAt(fd int, name string) (int, error) {
	for {
		nfd, err := unix.Openat(fd, name, openFlags|unix.O_DIRECTORY, 0)
		if err == unix.EINTR {
			continue
		}
		return nfd, err
	}
}

// openDirPath opens an absolute or relative folder path, following links
// only in the path the user gave (the root itself).
func openDirPath(p string) (int, error) {
	for {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// openFileAt opens regular file name of fd with O_NOFOLLOW|O_NONBLOCK and
// checks, on the handle, that it is a regular file; skip says what it is
// otherwise (the handle is then closed).
func openFileAt(fd int, name, label string) (*os.File, string, error) {
	var nfd int
	var err error
	for {
		nfd, err = unix.Openat(fd, name, openFlags, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.ELOOP {
		return nil, "symbolic link", nil
	}
	if err != nil {
		return nil, "", err
	}
	var st unix.Stat_t
	if err := unix.Fstat(nfd, &st); err != nil {
		unix.Close(nfd)
		return nil, "", err
	}
	if k := fileKind(st.Mode); k != "regular file" {
		unix.Close(nfd)
		return nil, k, nil
	}
	return os.NewFile(uintptr(nfd), label), "", nil
}

// openPath opens a relative slash path below fd, folder by folder, never
// following a link.
func openPath(fd int, rel string) (*os.File, string, error) {
	el := strings.Split(rel, "/")
	cur := fd
	for i, e := range el[:len(el)-1] {
		if e == "" || e == "." || e == ".." {
			return nil, "unsafe path", nil
		}
		nfd, err := openDirAt(cur, e)
		if i > 0 {
			unix.Close(cur)
		}
		if err != nil {
			return nil, "", err
		}
		cur = nfd
	}
	f, skip, err := openFileAt(cur, el[len(el)-1], rel)
	if cur != fd {
		unix.Close(cur)
	}
	return f, skip, err
}

// listDir returns the names in folder fd, sorted, at most max (+1 so the
// caller sees the limit crossed).
func listDir(fd int, max int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(dup)
	d := os.NewFile(uintptr(dup), "dir")
	defer d.Close()
	if _, err := unix.Seek(dup, 0, io.SeekStart); err != nil {
		return nil, err
	}
	var names []string
	for len(names) <= max {
		batch, err := d.Readdirnames(1024)
		names = append(names, batch...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(names)
	return names, nil
}

// errnoText renders an error from a system call without any path (the
// caller names the file).
func errnoText(err error) string {
	var en unix.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// usageError is a wrong invocation (errclass.ErrUsage) with its own message.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }
func (u usageError) Unwrap() error { return errclass.ErrUsage }

func usageErrorf(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }
