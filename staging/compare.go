package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"golang.org/x/sys/unix"
)

func (in *installer) blobConflicts() []string {
	var out []string
	for _, bp := range in.blobs {
		if bp.item.Action == ActionConflict {
			out = append(out, fmt.Sprintf("%s/blobs/%s: %s, bundle has sha256 %s", bp.project, bp.item.Path, bp.item.Reason, short(bp.item.SHA256)))
		}
	}
	return out
}

func (in *installer) conflicts() []string {
	out := in.blobConflicts()
	for _, pw := range in.projects {
		if pw.plan.Action != ActionConflict {
			continue
		}
		n := 0
		for _, it := range pw.plan.Files {
			if it.Action == ActionConflict {
				n++
			}
		}
		why := ""
		if pw.p.Replaces != "" {
			why = ", and it changed since plan named it incomplete"
		}
		out = append(out, fmt.Sprintf("%s/%s: staged version differs from the bundle's (%d paths)%s", pw.plan.Name, pw.plan.Version, n, why))
	}
	return out
}

// planVersions compares each built version folder with the staged one.
func (in *installer) planVersions(ctx context.Context) error {
	for _, pw := range in.projects {
		built, err := in.walkTmp(ctx, pw.out)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", pw.plan.Name, pw.plan.Version, err)
		}
		var staged []treeEntry
		var st *unix.Stat_t
		if in.proj != nil {
			st, err = lstatAt(in.proj, pw.rel)
		} else {
			err = fs.ErrNotExist
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, beneath.ErrSymlink):
			return fmt.Errorf("stage %s: a folder on the way is a symlink or not a folder; refusing to stage through it (replace it with a real folder)", pw.target)
		case err != nil:
			return err
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			pw.exists = true
			d, err := in.proj.OpenDir(pw.rel)
			if err != nil {
				return fmt.Errorf("staged %s: %w", pw.target, err)
			}
			staged, err = walkTree(ctx, d)
			d.Close()
			if err != nil {
				return fmt.Errorf("staged %s: %w", pw.target, err)
			}
		default:
			pw.exists = true
			staged = []treeEntry{{Path: ".", Type: typeOther, Mode: modeString(fs.FileMode(st.Mode & 0o777))}}
		}
		// The repair a request asked for: the folder is still exactly as
		// plan saw it when it named the version incomplete.
		repair := pw.exists && pw.p.Replaces != "" && stagedPrint(staged) == pw.p.Replaces
		items, identical := diffTrees(built, staged, in.o.Force || repair)
		pw.plan.Files = items
		switch {
		case !pw.exists:
			pw.plan.Action = ActionAdd
		case identical:
			pw.plan.Action = ActionSkip
		case in.o.Force:
			pw.plan.Action = ActionReplace
		case repair:
			pw.plan.Action = ActionReplace
			in.log.Info("replacing an incomplete version as the request asked: it is as plan saw it", "version", pw.target)
		default:
			pw.plan.Action = ActionConflict
		}
	}
	return nil
}

// count fills the report's per-action totals (each blob once) and copies
// the final blob decisions into each project's plan.
func (in *installer) count() {
	c := map[Action]int{}
	in.rep.Counts = c
	for _, bp := range in.blobs {
		c[bp.item.Action]++
	}
	in.rep.Projects = in.rep.Projects[:0]
	for _, pw := range in.projects {
		if pw.plan.Action != "" {
			c[pw.plan.Action]++
		}
		for _, it := range pw.plan.Files {
			if it.Action == ActionRemove {
				c[ActionRemove]++
			}
		}
		in.rep.Projects = append(in.rep.Projects, *pw.plan)
	}
}

// walkTmp lists the folder rel of the install's temporary folder.
func (in *installer) walkTmp(ctx context.Context, rel string) ([]treeEntry, error) {
	t, err := beneath.OpenDir(in.tmp)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	d, err := t.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return walkTree(ctx, d)
}
