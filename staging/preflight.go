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

	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/manifest"
	"golang.org/x/sys/unix"
)

// preflight checks everything it can before a byte is written: space,
// filesystem, writability, required blobs and what is already staged.
func (in *installer) preflight(ctx context.Context) error {
	projects := ProjectsDir(in.root)
	existing := nearestExisting(projects)
	if existing != projects {
		if st, err := os.Stat(existing); err != nil || !st.IsDir() {
			return fmt.Errorf("staging folder: %s is not a folder; fix it so %s can be created", existing, projects)
		}
	}
	if err := syscall.Access(existing, unix.W_OK); err != nil {
		return fmt.Errorf("staging folder %s is not writable (%v): run as root, or fix the filesystem", existing, err)
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
		if err := syscall.Stat(tmpRoot(in.root), &a); err != nil {
			return err
		}
		if err := syscall.Stat(existing, &b); err != nil {
			return err
		}
		if a.Dev != b.Dev {
			return fmt.Errorf("%s and %s are on different filesystems; ccmirror needs them on one so it can rename atomically (make %s a folder on the staging filesystem)", StateDir(in.root), existing, StateDir(in.root))
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
				bp = &blobPlan{project: p.Name, payload: "payload/" + b.Path, target: filepath.Join(projects, p.Name, "blobs", filepath.FromSlash(b.Name)), carried: true,
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
			got, err := hashIfFile(ctx, target)
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
				bp := &blobPlan{project: p.Name, target: target, item: item}
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
	st, err := os.Lstat(bp.target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		bp.item.Action = ActionAdd
		return nil
	case err != nil:
		return fmt.Errorf("blob %s: %w", bp.target, err)
	}
	differ := ActionConflict
	if in.o.Force {
		differ = ActionReplace
	}
	switch {
	case !st.Mode().IsRegular():
		bp.item.Action, bp.item.Reason = differ, "staged path is not a regular file"
	case st.Size() != bp.item.Size:
		bp.item.Action, bp.item.Reason = differ, fmt.Sprintf("staged with size %d, bundle has %d", st.Size(), bp.item.Size)
	default:
		got, err := hashFile(ctx, bp.target)
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

func hashIfFile(ctx context.Context, p string) (string, error) {
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", nil
	}
	return hashFile(ctx, p)
}
