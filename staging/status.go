package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"github.com/ccmirror/ccmirror/manifest"
	"golang.org/x/sys/unix"
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
	Root string `json:"root"`
	// StateDir is the state folder whose records were read.
	StateDir string          `json:"state_dir"`
	Versions []VersionStatus `json:"versions"`
	// Problems counts versions that are not OK.
	Problems int `json:"problems"`
	// Interrupted lists temporary folders of installs that did not finish;
	// the next install undoes their partial changes.
	Interrupted []string `json:"interrupted,omitempty"`
	// Incomplete lists version folders with no project.ini: a version
	// whose staging never finished or was damaged (not counted in
	// Problems, as it has no version to check).
	Incomplete []string `json:"incomplete,omitempty"`
	// InstallRunning names the lock holder when an install is running.
	InstallRunning string   `json:"install_running,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
	// HashedBytes is how much status read to hash: 0 when every file was
	// unchanged since a run that hashed it (the hash cache), everything
	// with --deep.
	HashedBytes int64 `json:"hashed_bytes"`
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
	HeadSHA256   string      `json:"head_sha256,omitempty"`
	BundleSHA256 string      `json:"bundle_sha256,omitempty"`
	Time         time.Time   `json:"time"`
	Signer       *SignerInfo `json:"signer,omitempty"`
	Insecure     bool        `json:"insecure_skip_signature,omitempty"`
	Record       string      `json:"record"`
}

const maxOwnerProblems = 20

// StatusOptions controls StatusWith.
type StatusOptions struct {
	Root string // default DefaultRoot
	// StateDir is the state folder whose install records are trusted; ""
	// means StateDir(Root).
	StateDir string
	// Deep re-hashes every file instead of trusting the hash cache
	// (status --deep).
	Deep bool
	// Hashes, when set, is the Hasher to use (plan shares its own); nil
	// means one for this run, saved to the state folder at the end.
	Hashes *Hasher
}

// Status is StatusWith for root and its default state folder.
func Status(root string) (*StatusReport, error) { return StatusWith(StatusOptions{Root: root}) }

// StatusWith reads R/work/staging/projects/ and the install records and
// reports every staged version (a folder <name>/<version>/ holding
// project.ini): whether every blob its project.ini names is in
// <name>/blobs/ with the recorded hash, ownership problems, and which bundle
// installed it. It only reads, and reads staged files without following
// symlinks or blocking. Records are trusted only from a state folder that
// passes CheckStateDir; records an earlier ccmirror left under
// R/work/ccmirror are not (cycle_server can write there), so the versions
// they describe show as staged without a trusted record.
func StatusWith(o StatusOptions) (*StatusReport, error) {
	ctx := context.Background()
	root := o.Root
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
	state, err := resolveState(root, o.StateDir)
	if err != nil {
		return nil, err
	}
	rep := &StatusReport{Root: root, StateDir: state, Versions: []VersionStatus{}}
	var recs []Record
	var bad []string
	switch err := CheckStateDir(state, false); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		rep.Warnings = append(rep.Warnings, "install records not trusted: "+err.Error())
		state = ""
	default:
		if recs, bad, err = readRecords(state); err != nil {
			return nil, fmt.Errorf("install records: %w", err)
		}
	}
	for _, b := range bad {
		rep.Warnings = append(rep.Warnings, "install record not trusted or unreadable: "+b)
	}
	hasher := o.Hashes
	if hasher == nil {
		hasher = NewHasher(state, o.Deep)
		defer func() { _ = hasher.Save() }()
	}
	defer func() { rep.HashedBytes = hasher.HashedBytes() }()
	if legacy := recordsDir(legacyStateDir(root)); hasEntries(legacy) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("install records under %s (left by an earlier ccmirror) are not trusted: the cycle_server account can write there; the versions they describe show as staged without a trusted record until they are installed again", legacy))
	}
	// What the records know: blob hashes (latest wins) and who installed
	// each version.
	known := map[string]knownBlob{}
	installedBy := map[string]*Installation{}
	for i := range recs {
		rec := &recs[i]
		for _, p := range rec.Projects {
			for _, b := range p.Blobs {
				if b.Action == ActionAdd || b.Action == ActionReplace || b.Action == ActionSkip {
					known[p.Name+"/"+b.Path] = knownBlob{sha256: b.SHA256, size: b.Size}
				}
			}
			if p.Action == ActionAdd || p.Action == ActionReplace {
				installedBy[p.Name+"/"+p.Version] = &Installation{Bundle: rec.Bundle, HeadSHA256: rec.HeadSHA256, BundleSHA256: rec.BundleSHA256, Time: rec.Time,
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
	rootDir, err := beneath.OpenDir(root)
	if err != nil {
		return nil, err
	}
	defer rootDir.Close()
	proj, err := openProjects(rootDir)
	if err != nil {
		return nil, err
	}
	defer proj.Close()
	var names []beneath.Entry
	if proj != nil {
		if names, err = proj.ReadDir(); err != nil {
			return nil, fmt.Errorf("staging folder: %w", err)
		}
	}
	warn := func(w string) { rep.Warnings = append(rep.Warnings, w) }
	for _, n := range names {
		if !n.Type.IsDir() {
			continue
		}
		pdir, err := proj.OpenDir(n.Name)
		if err != nil {
			warn(err.Error())
			continue
		}
		versions, err := pdir.ReadDir()
		if err != nil {
			pdir.Close()
			warn(err.Error())
			continue
		}
		for _, v := range versions {
			if !v.Type.IsDir() || v.Name == "blobs" {
				continue
			}
			dir := filepath.Join(projects, n.Name, v.Name)
			vdir, err := pdir.OpenDir(v.Name)
			if err != nil {
				warn(err.Error())
				continue
			}
			if _, err := vdir.Lstat("project.ini"); err != nil {
				vdir.Close()
				warn(fmt.Sprintf("%s has no project.ini: not a staged version", dir))
				rep.Incomplete = append(rep.Incomplete, dir)
				continue
			}
			key := n.Name + "/" + v.Name
			vs := VersionStatus{Name: n.Name, Version: v.Name, Dir: dir, Blobs: []BlobStatus{}, InstalledBy: installedBy[key]}
			owner, haveOwner := ownerOf[key]
			if !haveOwner && defErr == nil {
				owner, haveOwner = defOwner, true
			}
			if haveOwner {
				vs.Owner = owner.Spec
			}
			statusVersion(ctx, &vs, pdir, vdir, known, owner, haveOwner, hasher, warn)
			if files, ok := filesOf[key]; ok && len(files) > 0 {
				compareFiles(ctx, &vs, vdir, files, hasher)
			}
			vdir.Close()
			if !haveOwner {
				warn(fmt.Sprintf("%s: ownership not checked: no install record and %v", key, defErr))
			}
			if !vs.OK {
				rep.Problems++
			}
			rep.Versions = append(rep.Versions, vs)
		}
		pdir.Close()
	}
	sort.SliceStable(rep.Versions, func(i, j int) bool {
		a, b := rep.Versions[i], rep.Versions[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return manifest.CompareVersions(a.Version, b.Version) < 0
	})
	if state != "" {
		rep.Interrupted = interruptedInstalls(state)
		if h, held := lockHeld(state); held {
			rep.InstallRunning = h.String()
		}
	}
	return rep, nil
}

// knownBlob is what the install records say a staged blob is.
type knownBlob struct {
	sha256 string
	size   int64
}

// statusVersion checks one staged version: project.ini, the blobs it
// names, ownership. Everything is read on handles (pdir: the project
// folder, vdir: the version folder), without following symlinks or
// blocking; a blob is read at most up to the size its record gives.
func statusVersion(ctx context.Context, vs *VersionStatus, pdir, vdir *beneath.Dir, known map[string]knownBlob, owner Owner, checkOwner bool, hasher *Hasher, warn func(string)) {
	var ini *manifest.ProjectINI
	f, err := vdir.Open("project.ini")
	if err == nil {
		ini, err = manifest.ParseProjectINI(f, filepath.Join(vs.Dir, "project.ini"))
		f.Close()
	}
	if err != nil {
		vs.Error = err.Error()
	}
	problem := vs.Error != ""
	note := func(p string, st *unix.Stat_t) {
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
			k := known[vs.Name+"/"+b]
			bs := BlobStatus{Name: b, Want: k.sha256}
			p := filepath.Join(pdir.Name, "blobs", filepath.FromSlash(b))
			if !manifest.ValidBlobName(b) {
				bs.State = BlobMissing
				problem = true
				vs.Blobs = append(vs.Blobs, bs)
				continue
			}
			// Opened without following a symlink and without blocking: a
			// symlink could point anywhere, a FIFO would never answer.
			f, err := pdir.Open("blobs/" + b)
			var nr *beneath.NotRegularError
			switch {
			case errors.As(err, &nr):
				warn(err.Error() + ": not read")
				fallthrough
			case err != nil:
				if !errors.Is(err, fs.ErrNotExist) && nr == nil {
					warn(err.Error())
				}
				bs.State = BlobMissing
				problem = true
				vs.Blobs = append(vs.Blobs, bs)
				continue
			}
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err == nil {
				bs.Size = st.Size
				note(p, &st)
			}
			if bs.Want == "" {
				f.Close()
				bs.State = BlobUnknown
				vs.Blobs = append(vs.Blobs, bs)
				continue
			}
			// Read at most what the record says the blob was.
			sum, err := hasher.Sum(ctx, f, k.size)
			f.Close()
			switch {
			case errors.Is(err, errSizeDiffers):
				bs.State = BlobMismatch
				problem = true
			case err != nil:
				warn(err.Error())
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
	var st unix.Stat_t
	if unix.Fstat(vdir.Fd(), &st) == nil {
		note(vs.Dir, &st)
	}
	_ = vdir.Walk(ctx, func(rel string, _ *beneath.Dir, _ string, st *unix.Stat_t) error {
		note(filepath.Join(vs.Dir, filepath.FromSlash(rel)), st)
		return nil
	})
	vs.OK = !problem && vs.OwnerProblemCount == 0
}

// compareFiles checks a version folder's regular files against the ones an
// install record lists, so an edit after install shows as a problem. Each
// file is read on a handle, at most up to its recorded size.
func compareFiles(ctx context.Context, vs *VersionStatus, vdir *beneath.Dir, files []PlanItem, hasher *Hasher) {
	want := map[string]PlanItem{}
	for _, f := range files {
		if f.Type == typeFile {
			want[f.Path] = f
		}
	}
	add := func(path, state string) {
		vs.ChangedCount++
		if len(vs.Changed) < maxOwnerProblems {
			vs.Changed = append(vs.Changed, FileChange{Path: path, State: state})
		}
	}
	seen := map[string]bool{}
	_ = vdir.Walk(ctx, func(rel string, parent *beneath.Dir, name string, st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil
		}
		seen[rel] = true
		w, ok := want[rel]
		switch {
		case !ok:
			add(rel, "unexpected")
		case w.SHA256 != "":
			got := ""
			f, err := parent.Open(name)
			if err == nil {
				got, err = hasher.Sum(ctx, f, w.Size)
				f.Close()
			}
			if err != nil || got != w.SHA256 {
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
func interruptedInstalls(state string) []string {
	entries, err := os.ReadDir(tmpRoot(state))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		dir := filepath.Join(tmpRoot(state), e.Name())
		ops, committed, err := readJournal(filepath.Join(dir, journalName))
		if err == nil && !committed && len(ops) > 0 {
			out = append(out, dir)
		}
	}
	return out
}

// hasEntries reports whether dir is a folder with something in it.
func hasEntries(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) > 0
}
