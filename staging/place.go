package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"golang.org/x/sys/unix"
)

// prepareOwnership gives the owner, and blobs their policy mode (0644:
// tar header modes are not signed and are ignored), to everything about to
// be placed, while it is still in the temporary folder.
func (in *installer) prepareOwnership() error {
	uid, gid := in.owner.UID, in.owner.GID
	for _, bp := range in.blobs {
		if !bp.carried || (bp.item.Action != ActionAdd && bp.item.Action != ActionReplace) {
			continue
		}
		if err := in.troot.Chmod(bp.payload, blobMode); err != nil {
			return err
		}
		if err := in.troot.Chown(bp.payload, uid, gid); err != nil {
			return fmt.Errorf("chown %s to %s: %w", bp.item.Path, in.owner.Spec, err)
		}
	}
	for _, pw := range in.projects {
		if pw.plan.Action == ActionSkip {
			continue
		}
		err := fs.WalkDir(in.troot.FS(), pw.out, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return in.troot.Lchown(p, uid, gid)
		})
		if err != nil {
			return fmt.Errorf("chown %s/%s to %s: %w", pw.plan.Name, pw.plan.Version, in.owner.Spec, err)
		}
	}
	// One syncfs makes every file and folder written so far durable
	// before anything is renamed into the staging tree.
	return in.durable.fs(in.tmp)
}

// place moves blobs, then version folders, into the staging tree under
// the journal, then writes the install record and commits.
func (in *installer) place(ctx context.Context) error {
	j, err := createJournal(in.tmp, in.durable)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	in.journal = j
	if err := in.troot.Mkdir("old", 0o700); err != nil {
		return err
	}
	syncDirs := map[*beneath.Dir]bool{}
	// New blobs: their folders first (each mkdir journaled), then one
	// group commit naming every rename, then the renames.
	var adds []pendingAdd
	for _, bp := range in.blobs {
		if !bp.carried || bp.item.Action != ActionAdd {
			continue
		}
		d, name, err := in.parentOf(bp.rel)
		if err != nil {
			return fmt.Errorf("stage blob %s/blobs/%s: %w", bp.project, bp.item.Path, err)
		}
		src := filepath.Join(in.tmp, filepath.FromSlash(bp.payload))
		adds = append(adds, pendingAdd{bp: bp, d: d, name: name,
			op: journalOp{Op: opAdd, Path: path.Join(d.Name, name), Tmp: src, Ino: inodeOf(src)}})
	}
	if err := in.addFiles(ctx, adds); err != nil {
		return err
	}
	for _, a := range adds {
		syncDirs[a.d] = true
	}
	for _, bp := range in.blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !bp.carried || bp.item.Action != ActionReplace {
			continue
		}
		src := filepath.Join(in.tmp, filepath.FromSlash(bp.payload))
		d, err := in.replaceFile(src, bp.rel)
		if err != nil {
			return fmt.Errorf("stage blob %s/blobs/%s: %w", bp.project, bp.item.Path, err)
		}
		syncDirs[d] = true
		in.hook("blob:" + bp.project + "/" + bp.item.Path)
	}
	for d := range syncDirs {
		if err := in.durable.fd(d); err != nil {
			return err
		}
	}
	in.hook("blobs-synced")
	for _, pw := range in.projects {
		if err := ctx.Err(); err != nil {
			return err
		}
		if pw.plan.Action == ActionSkip {
			continue
		}
		d, err := in.placeVersion(pw)
		if err != nil {
			return fmt.Errorf("stage %s/%s: %w", pw.plan.Name, pw.plan.Version, err)
		}
		if err := in.durable.fd(d); err != nil {
			return err
		}
		in.hook("version:" + pw.plan.Name + "/" + pw.plan.Version)
	}
	if err := in.writeRecord(); err != nil {
		return fmt.Errorf("install record: %w", err)
	}
	in.hook("recorded")
	if err := j.log(journalOp{Op: opCommit}); err != nil {
		return err
	}
	in.hook("committed")
	in.log.Info("installed", "bundle", in.rep.Bundle, "record", in.rep.Record)
	return nil
}

// parentOf opens, on handles, the folder that holds the staged path rel
// (relative to the projects folder), creating the missing folders on the
// way: each journaled, made 0700, then fchown-ed to the install's owner and
// fchmod-ed 0755 on its own handle. It returns the folder and the entry's
// name in it.
func (in *installer) parentOf(rel string) (*beneath.Dir, string, error) {
	full := projectsRel + "/" + rel
	dir, name := path.Split(full)
	d, err := in.h.folder(strings.TrimSuffix(dir, "/"), in.mkdirAt)
	return d, name, err
}

// mkdirAt creates name in parent (rel is its path relative to the root).
func (in *installer) mkdirAt(rel string, parent *beneath.Dir, name string) (*beneath.Dir, error) {
	abs := filepath.Join(in.root, filepath.FromSlash(rel))
	if err := in.journal.log(journalOp{Op: opMkdir, Path: abs}); err != nil {
		return nil, err
	}
	if err := unix.Mkdirat(parent.Fd(), name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, wrapAt("mkdir", parent, name, err)
	}
	d, err := parent.OpenDir(name)
	if err != nil {
		return nil, err
	}
	if err := unix.Fchown(d.Fd(), in.owner.UID, in.owner.GID); err != nil {
		d.Close()
		return nil, fmt.Errorf("chown %s to %s: %w", abs, in.owner.Spec, err)
	}
	if err := unix.Fchmod(d.Fd(), dirMode); err != nil {
		d.Close()
		return nil, &fs.PathError{Op: "chmod", Path: abs, Err: err}
	}
	if err := in.durable.fd(parent); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// checkPlaced makes sure the entry placed as name in d is the one renamed
// there (inode ino) and that d is still the folder it was meant to be.
func (in *installer) checkPlaced(d *beneath.Dir, name string, ino uint64) error {
	if got := entryIno(d, name); got != ino || ino == 0 {
		return fmt.Errorf("%s was replaced as it was being staged (someone else writes there)", path.Join(d.Name, name))
	}
	rel, ok := relToRoot(in.root, d.Name)
	if !ok {
		return fmt.Errorf("%s: not inside %s", d.Name, in.root)
	}
	return in.h.stillThere(rel, d)
}

// pendingAdd is a new blob about to be renamed into the staging tree.
type pendingAdd struct {
	bp   *blobPlan
	d    *beneath.Dir // its folder, on a handle
	name string
	op   journalOp
}

// addFiles journals every rename of adds as one group, then renames each
// new blob into its folder (never over an entry planted meanwhile) and
// checks it is the one placed.
func (in *installer) addFiles(ctx context.Context, adds []pendingAdd) error {
	if len(adds) == 0 {
		return nil
	}
	ops := make([]journalOp, len(adds))
	for i, a := range adds {
		ops[i] = a.op
	}
	if err := in.journal.logAll(ops); err != nil {
		return err
	}
	for _, a := range adds {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := renameInto(a.op.Tmp, a.d, a.name, true)
		if err == nil {
			err = in.checkPlaced(a.d, a.name, a.op.Ino)
		}
		if err != nil {
			return fmt.Errorf("stage blob %s/blobs/%s: %w", a.bp.project, a.bp.item.Path, err)
		}
		in.hook("blob:" + a.bp.project + "/" + a.bp.item.Path)
	}
	return nil
}

func (in *installer) replaceFile(src, rel string) (*beneath.Dir, error) {
	d, name, err := in.parentOf(rel)
	if err != nil {
		return nil, err
	}
	backup, err := in.backupName()
	if err != nil {
		return nil, err
	}
	ino := inodeOf(src)
	if err := in.journal.log(journalOp{Op: opReplace, Path: path.Join(d.Name, name), Tmp: src, Backup: backup, Ino: ino}); err != nil {
		return nil, err
	}
	// Keep the staged entry (not followed: a symlink stays a symlink).
	if err := unix.Linkat(d.Fd(), name, unix.AT_FDCWD, backup, 0); err != nil {
		return nil, wrapAt("link", d, name, err)
	}
	if err := in.durable.dir(filepath.Dir(backup)); err != nil {
		return nil, err
	}
	if err := renameInto(src, d, name, false); err != nil {
		return nil, err
	}
	return d, in.checkPlaced(d, name, ino)
}

func (in *installer) backupName() (string, error) {
	f, err := os.CreateTemp(filepath.Join(in.tmp, "old"), "b-")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, os.Remove(name)
}

// placeVersion renames the built folder into place: plainly when the
// version is new; otherwise by atomic exchange with the staged folder
// (renameat2 RENAME_EXCHANGE) or, where the filesystem lacks that, by
// renaming the old one aside first. The target is named by its parent's
// handle.
func (in *installer) placeVersion(pw *projectWork) (*beneath.Dir, error) {
	d, name, err := in.parentOf(pw.rel)
	if err != nil {
		return nil, err
	}
	src := filepath.Join(in.tmp, filepath.FromSlash(pw.out))
	ino := inodeOf(src)
	op := journalOp{Op: opVersion, Path: path.Join(d.Name, name), Tmp: src, Ino: ino}
	if !pw.exists {
		op.Mode = placeNew
		if err := in.journal.log(op); err != nil {
			return nil, err
		}
		if err := renameInto(src, d, name, true); err != nil {
			return nil, err
		}
		return d, in.checkPlaced(d, name, ino)
	}
	if !in.sw.noExchange {
		op.Mode = placeExchange
		if err := in.journal.log(op); err != nil {
			return nil, err
		}
		err := unix.Renameat2(unix.AT_FDCWD, src, d.Fd(), name, unix.RENAME_EXCHANGE)
		if err == nil {
			in.log.Info("replaced staged version atomically", "version", pw.target)
			return d, in.checkPlaced(d, name, ino)
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
			return nil, wrapAt("rename", d, name, err)
		}
		in.log.Info("filesystem cannot exchange folders atomically; renaming the old version aside first", "err", err)
	}
	backup, err := in.backupName()
	if err != nil {
		return nil, err
	}
	op.Mode, op.Backup = placeAside, backup
	if err := in.journal.log(op); err != nil {
		return nil, err
	}
	if err := unix.Renameat(d.Fd(), name, unix.AT_FDCWD, backup); err != nil {
		return nil, wrapAt("rename", d, name, err)
	}
	in.hook("version-aside:" + pw.plan.Name + "/" + pw.plan.Version)
	if err := renameInto(src, d, name, true); err != nil {
		return nil, err
	}
	return d, in.checkPlaced(d, name, ino)
}
