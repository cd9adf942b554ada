package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/manifest"
	"golang.org/x/sys/unix"
)

// preflight checks everything it can before a byte is written: space,
// filesystem, writability, required blobs and what is already staged.
func (in *installer) preflight(ctx context.Context) error {
	var err error
	if in.proj, err = openProjects(in.rootDir); err != nil {
		return err
	}
	projects := ProjectsDir(in.root)
	existing := nearestExisting(projects)
	if existing != projects {
		if st, err := os.Stat(existing); err != nil || !st.IsDir() {
			return fmt.Errorf("staging folder: %s is not a folder; fix it so %s can be created", existing, projects)
		}
	}
	if err := syscall.Access(existing, unix.W_OK); err != nil {
		return fmt.Errorf("staging folder is not writable: %w; run as root, or fix the filesystem", errclass.Local("write", existing, err))
	}
	var need int64
	for _, f := range in.m.Files() {
		need += f.Size
	}
	for _, p := range in.m.Projects {
		need += 2 * p.Source.Size // unpacked source, then the built version folder
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(existing, &sfs); err != nil {
		return fmt.Errorf("free space on %s: %w", existing, err)
	}
	if avail := int64(sfs.Bavail) * int64(sfs.Bsize); avail < need {
		return fmt.Errorf("not enough free space for %s: need %s, %s has %s free; free some space or use a larger --root", in.rep.Bundle, text.HumanBytes(need), existing, text.HumanBytes(avail))
	}
	if !in.o.DryRun {
		var a, b syscall.Stat_t
		if err := syscall.Stat(tmpRoot(in.state), &a); err != nil {
			return err
		}
		if err := syscall.Stat(existing, &b); err != nil {
			return err
		}
		if a.Dev != b.Dev {
			return fmt.Errorf("state folder %s and %s are on different filesystems; ccmirror unpacks in the state folder and needs it on the staging filesystem to rename atomically: pass --state-dir with a folder only root can write on that filesystem", in.state, existing)
		}
	}

	// Blobs: carried (add / skip / conflict) and required (must be staged).
	seen := map[string]*blobPlan{}
	var missing []string
	for _, p := range in.m.Projects {
		pw := &projectWork{p: p, plan: &ProjectPlan{Name: p.Name, BundleVersion: p.Version, Tag: p.Tag, Commit: p.Commit, Repository: p.Repository,
			Blobs: []PlanItem{}, Files: []PlanItem{}}}
		in.projects = append(in.projects, pw)
		for _, b := range p.Blobs {
			key := p.Name + "/" + b.Name
			bp := seen[key]
			if bp == nil {
				bp = &blobPlan{project: p.Name, payload: "payload/" + b.Path, target: filepath.Join(projects, p.Name, "blobs", filepath.FromSlash(b.Name)), rel: p.Name + "/blobs/" + b.Name, carried: true,
					item: PlanItem{Path: b.Name, Type: "blob", Size: b.Size, SHA256: b.SHA256}}
				if err := in.planBlob(ctx, bp); err != nil {
					return err
				}
				seen[key] = bp
				in.blobs = append(in.blobs, bp)
			}
			pw.plan.Blobs = append(pw.plan.Blobs, bp.item)
		}
		for _, b := range p.Required {
			key := p.Name + "/" + b.Name
			if bp := seen[key]; bp != nil && bp.carried {
				if bp.item.SHA256 != b.SHA256 {
					return fmt.Errorf("project %s@%s: blob %s is both carried and required with different hashes: %w", p.Name, p.Version, b.Name, manifest.ErrVerify)
				}
				continue
			}
			target := filepath.Join(projects, p.Name, "blobs", filepath.FromSlash(b.Name))
			got, err := in.hashIfFile(ctx, p.Name+"/blobs/"+b.Name)
			if err != nil {
				return err
			}
			if got != b.SHA256 {
				state := "not staged"
				if got != "" {
					state = "staged with sha256 " + short(got)
				}
				missing = append(missing, fmt.Sprintf("%s/blobs/%s (%s, want sha256 %s)", p.Name, b.Name, state, short(b.SHA256)))
				continue
			}
			item := PlanItem{Path: b.Name, Type: "blob", Action: ActionSkip, Size: b.Size, SHA256: b.SHA256, Reason: "required: already staged with this sha256"}
			if seen[key] == nil {
				bp := &blobPlan{project: p.Name, target: target, rel: p.Name + "/blobs/" + b.Name, item: item}
				seen[key] = bp
				in.blobs = append(in.blobs, bp)
			}
			pw.plan.Blobs = append(pw.plan.Blobs, item)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the bundle relies on blobs the server must already hold, and these are missing or different: %s: %w", strings.Join(missing, ", "), manifest.ErrVerify)
	}
	return nil
}

// planBlob decides add / skip / conflict (replace with Force) for one
// carried blob by looking at what is staged.
func (in *installer) planBlob(ctx context.Context, bp *blobPlan) error {
	if in.proj == nil {
		bp.item.Action = ActionAdd
		return nil
	}
	st, err := lstatAt(in.proj, bp.rel)
	onTheWay := errors.Is(err, beneath.ErrSymlink)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		bp.item.Action = ActionAdd
		return nil
	case err != nil && !onTheWay:
		return fmt.Errorf("blob %s: %w", bp.target, err)
	}
	differ := ActionConflict
	if in.o.Force {
		differ = ActionReplace
	}
	switch {
	case onTheWay:
		bp.item.Action, bp.item.Reason = differ, "a folder on the way is a symlink or not a folder"
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		bp.item.Action, bp.item.Reason = differ, "staged path is not a regular file"
	case st.Size != bp.item.Size:
		bp.item.Action, bp.item.Reason = differ, fmt.Sprintf("staged with size %d, bundle has %d", st.Size, bp.item.Size)
	default:
		got, _, err := hashAt(ctx, in.proj, bp.rel, st.Size)
		if err != nil {
			return fmt.Errorf("blob %s: %w", bp.target, err)
		}
		if got == bp.item.SHA256 {
			bp.item.Action, bp.item.Reason = ActionSkip, "already staged with this sha256"
		} else {
			bp.item.Action, bp.item.Reason = differ, "staged with sha256 "+short(got)
		}
	}
	return nil
}

// nearestExisting returns p or its closest existing ancestor.
func nearestExisting(p string) string {
	for {
		if _, err := os.Lstat(p); err == nil {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		p = parent
	}
}

// hashIfFile hashes the staged file rel (below the projects folder) when it
// is a regular file reached without a symlink, else returns "".
func (in *installer) hashIfFile(ctx context.Context, rel string) (string, error) {
	if in.proj == nil {
		return "", nil
	}
	sum, _, err := hashAt(ctx, in.proj, rel, -1)
	var nr *beneath.NotRegularError
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, beneath.ErrSymlink) || errors.As(err, &nr) {
		return "", nil
	}
	return sum, err
}
