package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
)

// Blob states in a StatusReport.
const (
	BlobOK       = "ok"       // present with the hash the install records expect
	BlobMissing  = "missing"  // project.ini names it, <name>/blobs/ lacks it
	BlobMismatch = "mismatch" // present with another hash than recorded
	BlobUnknown  = "unknown"  // present, but no install record knows its hash
)

// StatusReport describes every project version staged under a root.
type StatusReport struct {
	Root     string          `json:"root"`
	Versions []VersionStatus `json:"versions"`
	// Problems counts versions that are not OK.
	Problems int `json:"problems"`
	// Interrupted lists temporary folders of installs that did not finish;
	// the next install undoes their partial changes.
	Interrupted []string `json:"interrupted,omitempty"`
	// InstallRunning names the lock holder when an install is running.
	InstallRunning string   `json:"install_running,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
}

// VersionStatus is one staged project version.
type VersionStatus struct {
	Name    string       `json:"name"`
	Version string       `json:"version"`
	Dir     string       `json:"dir"`
	OK      bool         `json:"ok"`
	Error   string       `json:"error,omitempty"` // e.g. unreadable project.ini
	Blobs   []BlobStatus `json:"blobs"`
	// Owner is the owner everything should have ("" when unknown).
	Owner string `json:"owner,omitempty"`
	// OwnerProblems lists the first paths not owned by Owner;
	// OwnerProblemCount counts them all.
	OwnerProblems     []OwnerProblem `json:"owner_problems,omitempty"`
	OwnerProblemCount int            `json:"owner_problem_count"`
	InstalledBy       *Installation  `json:"installed_by,omitempty"`
	// Changed lists the first files of the version folder that differ from
	// what the install record says was staged; ChangedCount counts them all.
	Changed      []FileChange `json:"changed,omitempty"`
	ChangedCount int          `json:"changed_count"`
}

// FileChange is a file of a staged version folder that is not as installed.
type FileChange struct {
	Path  string `json:"path"`
	State string `json:"state"` // "modified", "missing" or "unexpected"
}

// BlobStatus is the state of one blob a staged project.ini names.
type BlobStatus struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // of the staged file
	Want   string `json:"want,omitempty"`   // from the install records
}

// OwnerProblem is a staged path with the wrong owner.
type OwnerProblem struct {
	Path string `json:"path"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

// Installation says which bundle staged a version, from the install records.
type Installation struct {
	Bundle       string      `json:"bundle"`
	BundleSHA256 string      `json:"bundle_sha256"`
	Time         time.Time   `json:"time"`
	Signer       *SignerInfo `json:"signer,omitempty"`
	Insecure     bool        `json:"insecure_skip_signature,omitempty"`
	Record       string      `json:"record"`
}

const maxOwnerProblems = 20

// Status reads R/work/staging/projects/ and the install records and reports
// every staged version (a folder <name>/<version>/ holding project.ini):
// whether every blob its project.ini names is in <name>/blobs/ with the
// recorded hash, ownership problems, and which bundle installed it. It only
// reads.
func Status(root string) (*StatusReport, error) {
	ctx := context.Background()
	if root == "" {
		root = DefaultRoot
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := CheckRoot(root); err != nil {
		return nil, err
	}
	rep := &StatusReport{Root: root, Versions: []VersionStatus{}}
	recs, bad, err := readRecords(root)
	if err != nil {
		return nil, fmt.Errorf("install records: %w", err)
	}
	for _, b := range bad {
		rep.Warnings = append(rep.Warnings, "unreadable install record "+b)
	}
	// What the records know: blob hashes (latest wins) and who installed
	// each version.
	known := map[string]string{}
	installedBy := map[string]*Installation{}
	for i := range recs {
		rec := &recs[i]
		for _, p := range rec.Projects {
			for _, b := range p.Blobs {
				if b.Action == ActionAdd || b.Action == ActionReplace || b.Action == ActionSkip {
					known[p.Name+"/"+b.Path] = b.SHA256
				}
			}
			if p.Action == ActionAdd || p.Action == ActionReplace {
				installedBy[p.Name+"/"+p.Version] = &Installation{Bundle: rec.Bundle, BundleSHA256: rec.BundleSHA256, Time: rec.Time,
					Signer: rec.Signer, Insecure: rec.Insecure, Record: rec.Path}
			}
		}
	}
	ownerOf := map[string]Owner{}
	filesOf := map[string][]PlanItem{} // what the latest install staged
	for _, rec := range recs {
		for _, p := range rec.Projects {
			if p.Action == ActionAdd || p.Action == ActionReplace {
				ownerOf[p.Name+"/"+p.Version] = rec.Owner
				filesOf[p.Name+"/"+p.Version] = p.Files
			}
		}
	}
	defOwner, defErr := ResolveOwner(DefaultOwner)

	projects := ProjectsDir(root)
	names, err := os.ReadDir(projects)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("staging folder: %w", err)
	}
	for _, n := range names {
		if !n.IsDir() {
			continue
		}
		versions, err := os.ReadDir(filepath.Join(projects, n.Name()))
		if err != nil {
			rep.Warnings = append(rep.Warnings, err.Error())
			continue
		}
		for _, v := range versions {
			if !v.IsDir() || v.Name() == "blobs" {
				continue
			}
			dir := filepath.Join(projects, n.Name(), v.Name())
			if _, err := os.Lstat(filepath.Join(dir, "project.ini")); err != nil {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s has no project.ini: not a staged version", dir))
				continue
			}
			key := n.Name() + "/" + v.Name()
			vs := VersionStatus{Name: n.Name(), Version: v.Name(), Dir: dir, Blobs: []BlobStatus{}, InstalledBy: installedBy[key]}
			owner, haveOwner := ownerOf[key]
			if !haveOwner && defErr == nil {
				owner, haveOwner = defOwner, true
			}
			if haveOwner {
				vs.Owner = owner.Spec
			}
			statusVersion(ctx, &vs, projects, known, owner, haveOwner)
			if files, ok := filesOf[key]; ok && len(files) > 0 {
				compareFiles(ctx, &vs, files)
			}
			if !haveOwner {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: ownership not checked: no install record and %v", key, defErr))
			}
			if !vs.OK {
				rep.Problems++
			}
			rep.Versions = append(rep.Versions, vs)
		}
	}
	sort.SliceStable(rep.Versions, func(i, j int) bool {
		a, b := rep.Versions[i], rep.Versions[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return manifest.CompareVersions(a.Version, b.Version) < 0
	})
	rep.Interrupted = interruptedInstalls(root)
	if h, held := lockHeld(root); held {
		rep.InstallRunning = h.String()
	}
	return rep, nil
}

func statusVersion(ctx context.Context, vs *VersionStatus, projects string, known map[string]string, owner Owner, checkOwner bool) {
	f, err := os.Open(filepath.Join(vs.Dir, "project.ini"))
	var ini *manifest.ProjectINI
	if err == nil {
		ini, err = manifest.ParseProjectINI(f, filepath.Join(vs.Dir, "project.ini"))
		f.Close()
	}
	if err != nil {
		vs.Error = err.Error()
	}
	problem := vs.Error != ""
	note := func(p string, st *syscall.Stat_t) {
		if !checkOwner || (int(st.Uid) == owner.UID && int(st.Gid) == owner.GID) {
			return
		}
		vs.OwnerProblemCount++
		if len(vs.OwnerProblems) < maxOwnerProblems {
			vs.OwnerProblems = append(vs.OwnerProblems, OwnerProblem{Path: p, UID: int(st.Uid), GID: int(st.Gid)})
		}
	}
	if ini != nil {
		for _, b := range ini.Blobs {
			bs := BlobStatus{Name: b, Want: known[vs.Name+"/"+b]}
			p := filepath.Join(projects, vs.Name, "blobs", filepath.FromSlash(b))
			var st syscall.Stat_t
			if !manifest.ValidBlobName(b) || syscall.Stat(p, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
				bs.State = BlobMissing
				problem = true
				vs.Blobs = append(vs.Blobs, bs)
				continue
			}
			bs.Size = st.Size
			note(p, &st)
			if bs.Want == "" {
				bs.State = BlobUnknown
				vs.Blobs = append(vs.Blobs, bs)
				continue
			}
			sum, err := hashFile(ctx, p)
			switch {
			case err != nil:
				bs.State = BlobMissing
				problem = true
			case sum == bs.Want:
				bs.SHA256, bs.State = sum, BlobOK
			default:
				bs.SHA256, bs.State = sum, BlobMismatch
				problem = true
			}
			vs.Blobs = append(vs.Blobs, bs)
		}
	}
	_ = filepath.WalkDir(vs.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			note(p, &st)
		}
		return nil
	})
	vs.OK = !problem && vs.OwnerProblemCount == 0
}

// compareFiles checks a version folder's regular files against the ones an
// install record lists, so an edit after install shows as a problem.
func compareFiles(ctx context.Context, vs *VersionStatus, files []PlanItem) {
	want := map[string]string{}
	for _, f := range files {
		if f.Type == typeFile {
			want[f.Path] = f.SHA256
		}
	}
	add := func(path, state string) {
		vs.ChangedCount++
		if len(vs.Changed) < maxOwnerProblems {
			vs.Changed = append(vs.Changed, FileChange{Path: path, State: state})
		}
	}
	seen := map[string]bool{}
	_ = filepath.WalkDir(vs.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(vs.Dir, p)
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		sum, ok := want[rel]
		switch {
		case !ok:
			add(rel, "unexpected")
		case sum != "":
			if got, err := hashFile(ctx, p); err != nil || got != sum {
				add(rel, "modified")
			}
		}
		return nil
	})
	for path := range want {
		if !seen[path] {
			add(path, "missing")
		}
	}
	sort.Slice(vs.Changed, func(i, j int) bool { return vs.Changed[i].Path < vs.Changed[j].Path })
	if vs.ChangedCount > 0 {
		vs.OK = false
	}
}

// interruptedInstalls lists temporary folders whose journal never
// committed.
func interruptedInstalls(root string) []string {
	entries, err := os.ReadDir(tmpRoot(root))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		dir := filepath.Join(tmpRoot(root), e.Name())
		ops, committed, err := readJournal(filepath.Join(dir, journalName))
		if err == nil && !committed && len(ops) > 0 {
			out = append(out, dir)
		}
	}
	return out
}
