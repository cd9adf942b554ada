package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
		out = append(out, fmt.Sprintf("%s/%s: staged version differs from the bundle's (%d paths)", pw.plan.Name, pw.plan.Version, n))
	}
	return out
}

// planVersions compares each built version folder with the staged one.
func (in *installer) planVersions(ctx context.Context) error {
	for _, pw := range in.projects {
		built, err := walkTree(ctx, filepath.Join(in.tmp, filepath.FromSlash(pw.out)))
		if err != nil {
			return fmt.Errorf("%s/%s: %w", pw.plan.Name, pw.plan.Version, err)
		}
		var staged []treeEntry
		st, err := os.Lstat(pw.target)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		case st.IsDir():
			pw.exists = true
			if staged, err = walkTree(ctx, pw.target); err != nil {
				return fmt.Errorf("staged %s: %w", pw.target, err)
			}
		default:
			pw.exists = true
			staged = []treeEntry{{Path: ".", Type: typeOther, Mode: modeString(st.Mode())}}
		}
		items, identical := diffTrees(built, staged, in.o.Force)
		pw.plan.Files = items
		switch {
		case !pw.exists:
			pw.plan.Action = ActionAdd
		case identical:
			pw.plan.Action = ActionSkip
		case in.o.Force:
			pw.plan.Action = ActionReplace
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
