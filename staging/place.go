package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
	syncDirs := map[string]bool{}
	for _, bp := range in.blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !bp.carried || (bp.item.Action != ActionAdd && bp.item.Action != ActionReplace) {
			continue
		}
		if err := in.mkdirs(filepath.Dir(bp.target)); err != nil {
			return err
		}
		src := filepath.Join(in.tmp, filepath.FromSlash(bp.payload))
		if bp.item.Action == ActionAdd {
			err = in.addFile(src, bp.target)
		} else {
			err = in.replaceFile(src, bp.target)
		}
		if err != nil {
			return fmt.Errorf("stage blob %s/blobs/%s: %w", bp.project, bp.item.Path, err)
		}
		syncDirs[filepath.Dir(bp.target)] = true
		in.hook("blob:" + bp.project + "/" + bp.item.Path)
	}
	for d := range syncDirs {
		if err := in.durable.dir(d); err != nil {
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
		if err := in.mkdirs(filepath.Dir(pw.target)); err != nil {
			return err
		}
		if err := in.placeVersion(pw); err != nil {
			return fmt.Errorf("stage %s/%s: %w", pw.plan.Name, pw.plan.Version, err)
		}
		if err := in.durable.dir(filepath.Dir(pw.target)); err != nil {
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

// mkdirs creates the missing folders down to dir, journaled, owned by the
// install's owner.
func (in *installer) mkdirs(dir string) error {
	var missing []string
	projects := ProjectsDir(in.root)
	d := dir
	for ; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if d == in.root || d == filepath.Dir(d) {
			break
		}
	}
	// Every existing folder from the projects folder down must be a real
	// folder: a symlink planted there would send the renames and chowns
	// that follow anywhere on the system.
	if strings.HasPrefix(d+string(filepath.Separator), projects+string(filepath.Separator)) {
		for e := d; ; e = filepath.Dir(e) {
			st, err := os.Lstat(e)
			if err != nil {
				return err
			}
			if !st.IsDir() {
				return fmt.Errorf("%s is not a folder (a symlink?): refusing to stage through it; replace it with a folder", e)
			}
			if e == projects || e == filepath.Dir(e) {
				break
			}
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := in.journal.log(journalOp{Op: opMkdir, Path: d}); err != nil {
			return err
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(d, in.owner.UID, in.owner.GID); err != nil {
			return fmt.Errorf("chown %s to %s: %w", d, in.owner.Spec, err)
		}
		if err := in.durable.dir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func (in *installer) addFile(src, target string) error {
	if err := in.journal.log(journalOp{Op: opAdd, Path: target, Tmp: src, Ino: inodeOf(src)}); err != nil {
		return err
	}
	return os.Rename(src, target)
}

func (in *installer) replaceFile(src, target string) error {
	backup, err := in.backupName()
	if err != nil {
		return err
	}
	if err := in.journal.log(journalOp{Op: opReplace, Path: target, Tmp: src, Backup: backup, Ino: inodeOf(src)}); err != nil {
		return err
	}
	if err := os.Link(target, backup); err != nil {
		return err
	}
	if err := in.durable.dir(filepath.Dir(backup)); err != nil {
		return err
	}
	return os.Rename(src, target)
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
// renaming the old one aside first.
func (in *installer) placeVersion(pw *projectWork) error {
	src := filepath.Join(in.tmp, filepath.FromSlash(pw.out))
	op := journalOp{Op: opVersion, Path: pw.target, Tmp: src, Ino: inodeOf(src)}
	if !pw.exists {
		op.Mode = placeNew
		if err := in.journal.log(op); err != nil {
			return err
		}
		return os.Rename(src, pw.target)
	}
	if !in.sw.noExchange {
		op.Mode = placeExchange
		if err := in.journal.log(op); err != nil {
			return err
		}
		err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, pw.target, unix.RENAME_EXCHANGE)
		if err == nil {
			in.log.Info("replaced staged version atomically", "version", pw.target)
			return nil
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
		in.log.Info("filesystem cannot exchange folders atomically; renaming the old version aside first", "err", err)
	}
	backup, err := in.backupName()
	if err != nil {
		return err
	}
	op.Mode, op.Backup = placeAside, backup
	if err := in.journal.log(op); err != nil {
		return err
	}
	if err := os.Rename(pw.target, backup); err != nil {
		return err
	}
	in.hook("version-aside:" + pw.plan.Name + "/" + pw.plan.Version)
	return os.Rename(src, pw.target)
}
