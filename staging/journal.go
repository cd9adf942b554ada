package staging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"golang.org/x/sys/unix"
)

// The journal makes placement undoable. Before each change to the staging
// tree, Install appends (and fsyncs) one line saying what it is about to do
// to <tmp>/journal; the new blobs of an install are logged as one group
// (one write, one fsync) before any of them is renamed into place. A last
// line {"op":"commit"} means the install completed.
// An install that fails undoes its own journal; one that was killed is
// undone by the next install, which finds the journal in the state folder's tmp/
// while holding the lock. Undo only touches what the journal names, and
// recognises what it created by inode, so it is safe to run twice.
const journalName = "journal"

// Journal operations.
const (
	opMkdir   = "mkdir"   // created folder Path
	opAdd     = "add"     // renamed Tmp (inode Ino) to the new name Path
	opReplace = "replace" // hard-linked Path to Backup, then renamed Tmp over Path
	opVersion = "version" // placed folder Tmp (inode Ino) at Path; Mode says how
	opCommit  = "commit"
)

// How a version folder was placed.
const (
	placeNew      = "new"      // Path did not exist: rename(Tmp, Path)
	placeExchange = "exchange" // renameat2(Tmp, Path, RENAME_EXCHANGE): the old folder is now at Tmp
	placeAside    = "aside"    // rename(Path, Backup), then rename(Tmp, Path)
)

type journalOp struct {
	Op     string `json:"op"`
	Path   string `json:"path,omitempty"`
	Tmp    string `json:"tmp,omitempty"`
	Backup string `json:"backup,omitempty"`
	Ino    uint64 `json:"ino,omitempty"`
	Mode   string `json:"mode,omitempty"`
}

type journal struct {
	f       *os.File
	ops     []journalOp
	durable durability
}

func createJournal(dir string, d durability) (*journal, error) {
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := d.dir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &journal{f: f, durable: d}, nil
}

// log appends op durably; only then may the caller make the change.
func (j *journal) log(op journalOp) error { return j.logAll([]journalOp{op}) }

// logAll appends ops with one write and one fsync (a group commit); only
// then may the caller make the changes, in any order and not necessarily
// all of them: undo recognises what was done by inode and skips the rest.
func (j *journal) logAll(ops []journalOp) error {
	var buf []byte
	for _, op := range ops {
		b, err := json.Marshal(op)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	if _, err := j.f.Write(buf); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.durable.file(j.f); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.ops = append(j.ops, ops...)
	return nil
}

func (j *journal) close() {
	if j != nil && j.f != nil {
		_ = j.f.Close()
		j.f = nil
	}
}

// readJournal parses a journal; a torn last line (a crash mid-append) is
// ignored, since its change was never made.
func readJournal(path string) ([]journalOp, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	var ops []journalOp
	committed := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var op journalOp
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			break
		}
		if op.Op == opCommit {
			committed = true
			continue
		}
		ops = append(ops, op)
	}
	return ops, committed, nil
}

// undo reverses ops, last first, and returns every problem it could not fix.
// Paths inside the staging root are reached from its handle, never through
// a symlink, and each entry is checked (by inode) to be the one the journal
// placed before it is moved or removed; paths in the state folder, which
// only root can change, are used by name.
func undo(ops []journalOp, rootDir *beneath.Dir, log *slog.Logger, d durability) error {
	var errs []error
	h := &handles{root: rootDir}
	defer h.close()
	synced := map[*beneath.Dir]bool{}
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		parent, err := undoOne(op, h)
		if errors.Is(err, beneath.ErrSymlink) {
			// Someone replaced a folder on the way: what was placed went
			// with it, and nothing is followed to reach it. Left as it is
			// rather than block every later install.
			log.Warn("cannot undo a change: a folder on the way was replaced by a symlink or another file; left as it is", "op", op.Op, "path", op.Path)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("undo %s %s: %w", op.Op, op.Path, err))
			continue
		}
		if parent != nil {
			synced[parent] = true
		}
		log.Debug("undid", "op", op.Op, "path", op.Path)
	}
	for dir := range synced {
		_ = d.fd(dir)
	}
	if len(errs) == 0 {
		return nil
	}
	return oneLineErrors(errs)
}

// at is where a journaled path is: its parent folder's handle and its name
// when it is inside the staging root, or nil and the path itself (in the
// state folder). A parent folder that is gone is fs.ErrNotExist.
func (h *handles) at(p string) (*beneath.Dir, string, error) {
	rel, inside := relToRoot(h.root.Name, p)
	if !inside {
		return nil, p, nil
	}
	dir, name := path.Split(rel)
	if dir == "" {
		return h.root, name, nil
	}
	d, err := h.root.OpenDir(strings.TrimSuffix(dir, "/"))
	if err == nil {
		h.keep(d)
	}
	return d, name, err
}

// undoOne reverses op and returns the staging folder it changed, if any.
func undoOne(op journalOp, h *handles) (*beneath.Dir, error) {
	d, name, err := h.at(op.Path)
	gone := errors.Is(err, fs.ErrNotExist)
	if err != nil && !gone {
		return nil, err
	}
	// ino is the inode of the journaled entry now, 0 when absent.
	ino := func() uint64 {
		if gone {
			return 0
		}
		if d == nil {
			return inodeOf(name)
		}
		return entryIno(d, name)
	}
	// rename moves the state-folder path from over the journaled entry (or
	// the entry to to, when back is false).
	move := func(back bool, other string, flags uint) error {
		if gone {
			return fmt.Errorf("its folder is gone: %w", fs.ErrNotExist)
		}
		dfd := unix.AT_FDCWD
		if d != nil {
			dfd = d.Fd()
		}
		if back {
			return unix.Renameat2(unix.AT_FDCWD, other, dfd, name, flags)
		}
		return unix.Renameat2(dfd, name, unix.AT_FDCWD, other, flags)
	}
	unlink := func(flags int) error {
		if d == nil {
			return unix.Unlinkat(unix.AT_FDCWD, name, flags)
		}
		return unix.Unlinkat(d.Fd(), name, flags)
	}
	switch op.Op {
	case opMkdir:
		if gone {
			return nil, nil
		}
		err := unlink(unix.AT_REMOVEDIR)
		if err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTDIR) {
			return d, nil
		}
		return nil, err
	case opAdd:
		if op.Ino != 0 && ino() == op.Ino {
			return d, unlink(0)
		}
		return d, nil
	case opReplace:
		if _, err := os.Lstat(op.Backup); err == nil {
			return d, move(true, op.Backup, 0)
		}
		return d, nil
	case opVersion:
		placed := op.Ino != 0 && ino() == op.Ino
		switch op.Mode {
		case placeNew:
			if placed {
				return d, move(false, op.Tmp, 0)
			}
		case placeExchange:
			if placed {
				return d, move(true, op.Tmp, unix.RENAME_EXCHANGE)
			}
		case placeAside:
			if placed {
				if err := move(false, op.Tmp, 0); err != nil {
					return nil, err
				}
			}
			if ino() == 0 {
				if _, err := os.Lstat(op.Backup); err == nil {
					return d, move(true, op.Backup, 0)
				}
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown journal operation %q", op.Op)
}

func inodeOf(p string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return 0
	}
	return st.Ino
}

// recoverTmp cleans the state folder's tmp/ while the lock is held: every
// folder there belongs to an install that is no longer running. An
// uncommitted journal is undone first, so the staging tree returns to what
// it was before that install started. A folder or journal that ccmirror did
// not make (not root's, or writable by others), or a journal naming a path
// outside the staging tree of root, its own temporary folder and the
// records folder, is refused: nothing of it is undone.
func recoverTmp(tmpRoot string, rootDir *beneath.Dir, log *slog.Logger, d durability) error {
	root := rootDir.Name
	entries, err := os.ReadDir(tmpRoot)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	records := recordsDir(filepath.Dir(tmpRoot))
	for _, e := range entries {
		dir := filepath.Join(tmpRoot, e.Name())
		if err := checkStateEntry(dir, true); err != nil {
			return fmt.Errorf("recover: %w", err)
		}
		jp := filepath.Join(dir, journalName)
		if err := checkStateEntry(jp, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("recover: %w", err)
		}
		ops, committed, err := readJournal(jp)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("recover %s: %w", dir, err)
		case !committed && len(ops) > 0:
			if err := checkJournalPaths(ops, root, dir, records); err != nil {
				return fmt.Errorf("recover %s: %w; refusing to undo it (inspect it, then remove that folder)", dir, err)
			}
			log.Warn("an earlier install was interrupted; undoing its partial changes to the staging tree", "tmp", dir, "changes", len(ops))
			if err := undo(ops, rootDir, log, d); err != nil {
				return fmt.Errorf("recover interrupted install %s (fix by hand, then remove that folder): %w", dir, err)
			}
		}
		log.Info("removing the temporary folder of an earlier install", "tmp", dir)
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("recover %s: %w", dir, err)
		}
	}
	return d.dir(tmpRoot)
}

// checkJournalPaths makes sure every path a journal names is inside one of
// the folders an install may change: the staging projects folder of root,
// the install's own temporary folder, the records folder; a created folder
// may also be one of the folders leading to the projects folder.
func checkJournalPaths(ops []journalOp, root, tmp, records string) error {
	allowed := []string{ProjectsDir(root), tmp, records}
	parents := map[string]bool{ProjectsDir(root): true, filepath.Dir(ProjectsDir(root)): true, filepath.Join(root, "work"): true}
	inside := func(p string) bool {
		if p == "" {
			return true
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return false
		}
		for _, a := range allowed {
			if strings.HasPrefix(p, a+string(filepath.Separator)) {
				return true
			}
		}
		return false
	}
	for _, op := range ops {
		if op.Op == opMkdir && parents[op.Path] {
			continue
		}
		for _, p := range []string{op.Path, op.Tmp, op.Backup} {
			if !inside(p) {
				return fmt.Errorf("journal names %q, outside the staging tree and the install's own folders", p)
			}
		}
	}
	return nil
}

// oneLineErrors joins errors into one line ("; "), still matching each
// with errors.Is and errors.As.
type oneLineErrors []error

func (e oneLineErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e oneLineErrors) Unwrap() []error { return e }
