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
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The journal makes placement undoable. Before each change to the staging
// tree, Install appends (and fsyncs) one line saying what it is about to do
// to <tmp>/journal. A last line {"op":"commit"} means the install completed.
// An install that fails undoes its own journal; one that was killed is
// undone by the next install, which finds the journal in R/work/ccmirror/tmp/
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
func (j *journal) log(op journalOp) error {
	b, err := json.Marshal(op)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.durable.file(j.f); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.ops = append(j.ops, op)
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
func undo(ops []journalOp, log *slog.Logger, d durability) error {
	var errs []error
	dirs := map[string]bool{}
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		if err := undoOne(op); err != nil {
			errs = append(errs, fmt.Errorf("undo %s %s: %w", op.Op, op.Path, err))
			continue
		}
		dirs[filepath.Dir(op.Path)] = true
		log.Debug("undid", "op", op.Op, "path", op.Path)
	}
	for dir := range dirs {
		_ = d.dir(dir)
	}
	return errors.Join(errs...)
}

func undoOne(op journalOp) error {
	switch op.Op {
	case opMkdir:
		err := os.Remove(op.Path)
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return nil
		}
		return err
	case opAdd:
		if inodeOf(op.Path) == op.Ino && op.Ino != 0 {
			return os.Remove(op.Path)
		}
		return nil
	case opReplace:
		if _, err := os.Lstat(op.Backup); err == nil {
			return os.Rename(op.Backup, op.Path)
		}
		return nil
	case opVersion:
		placed := op.Ino != 0 && inodeOf(op.Path) == op.Ino
		switch op.Mode {
		case placeNew:
			if placed {
				return os.Rename(op.Path, op.Tmp)
			}
		case placeExchange:
			if placed {
				return unix.Renameat2(unix.AT_FDCWD, op.Tmp, unix.AT_FDCWD, op.Path, unix.RENAME_EXCHANGE)
			}
		case placeAside:
			if placed {
				if err := os.Rename(op.Path, op.Tmp); err != nil {
					return err
				}
			}
			if _, err := os.Lstat(op.Path); errors.Is(err, fs.ErrNotExist) {
				if _, err := os.Lstat(op.Backup); err == nil {
					return os.Rename(op.Backup, op.Path)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("unknown journal operation %q", op.Op)
}

func inodeOf(p string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return 0
	}
	return st.Ino
}

// recoverTmp cleans R/work/ccmirror/tmp/ while the lock is held: every
// folder there belongs to an install that is no longer running. An
// uncommitted journal is undone first, so the staging tree returns to what
// it was before that install started.
func recoverTmp(tmpRoot string, log *slog.Logger, d durability) error {
	entries, err := os.ReadDir(tmpRoot)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(tmpRoot, e.Name())
		ops, committed, err := readJournal(filepath.Join(dir, journalName))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("recover %s: %w", dir, err)
		case !committed && len(ops) > 0:
			log.Warn("an earlier install was interrupted; undoing its partial changes to the staging tree", "tmp", dir, "changes", len(ops))
			if err := undo(ops, log, d); err != nil {
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
