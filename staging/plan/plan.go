// Package plan works out what a CycleCloud server lacks. It asks
// cycle_server which project versions CycleCloud knows (the cloud.project
// records), compares them with what is staged under
// R/work/staging/projects/, and builds the request file `ccmirror plan`
// writes: the versions that are missing or incomplete, with the repository
// and tag each record's Url names, the records that cannot be resolved, and
// an inventory of the blobs already staged (name, sha256, size per project),
// so `ccmirror fetch --request` carries only what the server lacks.
package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"github.com/ccmirror/ccmirror/internal/regfile"
	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/request"
	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/staging/cycleserver"
)

// Options says which server to plan for and how.
type Options struct {
	// Root is the CycleCloud installation folder; "" means
	// staging.DefaultRoot (/opt/cycle_server).
	Root string
	// StateDir is ccmirror's state folder, whose install records are
	// trusted; "" means staging.StateDir(Root).
	StateDir string
	// CyclePath is the cycle_server command; "" means <Root>/cycle_server.
	CyclePath string
	// Timeout bounds the cycle_server run (0: child.DefaultTimeout).
	Timeout time.Duration
	// AllVersions considers every record; by default only the highest
	// version of each project (numeric order, cycleserver.CompareVersions).
	AllVersions bool
	// Hostname is written into the request; "" means os.Hostname().
	Hostname string
	// Now stamps the request; nil means time.Now.
	Now func() time.Time
}

// Report says what Make found, for people and for --json.
type Report struct {
	Root        string `json:"root"`
	CycleServer string `json:"cycle_server"`
	AllVersions bool   `json:"all_versions"`
	// Records counts the cloud.project records cycle_server printed.
	Records int `json:"records"`
	// Wanted are the versions the request asks for, with why.
	Wanted []Wanted `json:"wanted"`
	// Staged are the considered versions that are already staged complete.
	Staged []Version `json:"staged"`
	// Older are versions CycleCloud knows that were not considered because
	// a higher version of the same project exists (without AllVersions).
	Older []Version `json:"older,omitempty"`
	// Unresolvable are records that need fetching but whose Url (or name,
	// or version) does not say what to fetch; they are reported, not guessed.
	Unresolvable []request.Unresolvable `json:"unresolvable"`
	// InventoryProjects and InventoryBlobs count what the inventory lists.
	InventoryProjects int `json:"inventory_projects"`
	InventoryBlobs    int `json:"inventory_blobs"`
	// InventoryBytes totals the sizes of the inventoried blobs.
	InventoryBytes int64    `json:"inventory_bytes"`
	Warnings       []string `json:"warnings,omitempty"`
}

// Wanted is one requested version plus a one-line detail of what is wrong
// with an incomplete one.
type Wanted struct {
	request.Item
	Detail string `json:"detail,omitempty"`
}

// Version names one project version.
type Version struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	URL     string `json:"url,omitempty"`
}

// maxDetail bounds how many blobs an "incomplete" detail names.
const maxDetail = 5

// Make asks cycle_server for the project records, compares them with what
// is staged under o.Root, and returns the request to write and a report.
// A version is wanted when its folder is absent (request.ReasonMissing) or
// present but incomplete: no project.ini, an unreadable project.ini, or a
// blob its project.ini names missing or different from the hash the install
// records hold (request.ReasonIncomplete). Errors: cycle_server failing or
// printing something unreadable, or the staging tree being unreadable.
func Make(ctx context.Context, o Options) (*request.Request, *Report, error) {
	root := o.Root
	if root == "" {
		root = staging.DefaultRoot
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, nil, fmt.Errorf("plan: root %s: %w", o.Root, err)
	}
	if err := staging.CheckRoot(root); err != nil {
		return nil, nil, fmt.Errorf("plan: %w", err)
	}
	cyclePath := o.CyclePath
	if cyclePath == "" {
		cyclePath = filepath.Join(root, "cycle_server")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	host := o.Hostname
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return nil, nil, fmt.Errorf("plan: hostname: %w", err)
		}
	}

	recs, err := cycleserver.Records(ctx, cyclePath, o.Timeout)
	if err != nil {
		return nil, nil, fmt.Errorf("plan: ask CycleCloud for its projects: %w", err)
	}
	state := o.StateDir
	if state == "" {
		state = staging.StateDir(root)
	}
	// One Hasher for status and the inventory: each staged file is hashed
	// at most once, and not at all when the hash cache knows it.
	hasher := staging.NewHasher(state, false)
	defer func() { _ = hasher.Save() }()
	st, err := staging.StatusWith(staging.StatusOptions{Root: root, StateDir: o.StateDir, Hashes: hasher})
	if err != nil {
		return nil, nil, fmt.Errorf("plan: read what is staged under %s: %w", staging.ProjectsDir(root), err)
	}
	rep := &Report{Root: root, CycleServer: cyclePath, AllVersions: o.AllVersions, Records: len(recs),
		Wanted: []Wanted{}, Staged: []Version{}, Unresolvable: []request.Unresolvable{}}
	if st.InstallRunning != "" {
		rep.Warnings = append(rep.Warnings, "an install is running ("+st.InstallRunning+"); plan again when it has finished")
	}
	for _, d := range st.Interrupted {
		rep.Warnings = append(rep.Warnings, "an install was interrupted ("+d+"); the next install undoes its partial changes")
	}

	req := &request.Request{Schema: request.Schema, Created: now().UTC().Truncate(time.Second),
		Hostname: printable(host, 255), Root: printable(root, 4096)}

	staged := map[string]*staging.VersionStatus{}
	for i := range st.Versions {
		v := &st.Versions[i]
		staged[v.Name+"@"+v.Version] = v
	}
	for _, g := range selectVersions(recs, o.AllVersions, rep) {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if g.problem != "" {
			u := unresolvable(g.recs[0], g.problem)
			rep.Unresolvable = append(rep.Unresolvable, u)
			req.Unresolvable = append(req.Unresolvable, u)
			continue
		}
		reason, detail := compare(staging.ProjectsDir(root), g.name, g.version, staged[g.name+"@"+g.version])
		if reason == "" {
			rep.Staged = append(rep.Staged, Version{Name: g.name, Version: g.version, URL: g.recs[0].URL})
			continue
		}
		repo, tag, url, problem := resolve(g.recs)
		if problem != "" {
			u := unresolvable(g.recs[0], problem)
			rep.Unresolvable = append(rep.Unresolvable, u)
			req.Unresolvable = append(req.Unresolvable, u)
			continue
		}
		it := request.Item{Name: g.name, Version: g.version, Repository: repo, Tag: tag, URL: printable(url, 4096), Reason: reason}
		if reason == request.ReasonIncomplete {
			// What install may replace without --force: this folder, as it
			// is now. A folder that cannot be read gets no print.
			if p, err := staging.VersionPrint(ctx, root, g.name, g.version); err == nil {
				it.Staged = p
			}
		}
		req.Wanted = append(req.Wanted, it)
		rep.Wanted = append(rep.Wanted, Wanted{Item: it, Detail: detail})
	}

	inv, warnings, err := inventory(ctx, root, st, hasher)
	if err != nil {
		return nil, nil, fmt.Errorf("plan: inventory of %s: %w", staging.ProjectsDir(root), err)
	}
	rep.Warnings = append(rep.Warnings, warnings...)
	req.Inventory = inv
	rep.InventoryProjects = len(inv)
	for _, p := range inv {
		rep.InventoryBlobs += len(p.Blobs)
		for _, b := range p.Blobs {
			rep.InventoryBytes += b.Size
		}
	}
	if err := req.Validate(); err != nil {
		return nil, nil, fmt.Errorf("plan: request: %w", err)
	}
	return req, rep, nil
}

// group is the records of one project version under consideration.
type group struct {
	name, version string
	recs          []cycleserver.Project
	// problem is set for a record that names no usable project version at
	// all (no or unsafe Name or Version); such a group holds one record.
	problem string
}

// identifiable reports whether a record names a project version usable as
// folder names, so it can be compared with the staging tree.
func identifiable(p cycleserver.Project) bool {
	return manifest.ValidName(p.Name) && manifest.ValidName(p.Version)
}

// selectVersions picks the project versions to consider, in name order and
// newest first: every version, or only each project's highest. Versions
// left out are noted in rep.Older. Records naming no usable project
// version come last, each its own group carrying its problem.
func selectVersions(recs []cycleserver.Project, all bool, rep *Report) []group {
	var named, broken []cycleserver.Project
	for _, r := range recs {
		if identifiable(r) {
			named = append(named, r)
		} else {
			broken = append(broken, r)
		}
	}
	cycleserver.Sort(named)
	highest := map[string]string{}
	for _, h := range cycleserver.Highest(named) {
		highest[h.Name] = h.Version
	}
	var out []group
	idx := map[string]int{}
	older := map[string]bool{}
	for _, r := range named {
		key := r.Name + "@" + r.Version
		if !all && highest[r.Name] != r.Version {
			if !older[key] {
				older[key] = true
				rep.Older = append(rep.Older, Version{Name: r.Name, Version: r.Version, URL: printable(r.URL, 4096)})
			}
			continue
		}
		if i, ok := idx[key]; ok {
			out[i].recs = append(out[i].recs, r)
			continue
		}
		idx[key] = len(out)
		out = append(out, group{name: r.Name, version: r.Version, recs: []cycleserver.Project{r}})
	}
	for _, r := range broken {
		problem := r.URLProblem
		if problem == "" {
			problem = "record names no usable project version"
		}
		out = append(out, group{name: r.Name, version: r.Version, recs: []cycleserver.Project{r}, problem: problem})
	}
	return out
}

// resolve derives the repository and tag of a project version from its
// records. Several records of one version must agree; a record whose Url is
// unusable is outvoted by one that names a release, but two different
// releases for one version are a problem, not a choice.
func resolve(recs []cycleserver.Project) (repo, tag, url, problem string) {
	seen := map[string]bool{}
	var urls []string
	for _, r := range recs {
		if r.URLProblem != "" {
			continue
		}
		k := r.Repo + "@" + r.Tag
		if seen[k] {
			continue
		}
		seen[k] = true
		if repo == "" {
			repo, tag, url = r.Repo, r.Tag, r.URL
		}
		urls = append(urls, strconv.Quote(r.URL))
	}
	switch {
	case len(urls) > 1:
		return "", "", "", fmt.Sprintf("%d records of this version name different releases: %s", len(recs), strings.Join(urls, ", "))
	case repo == "":
		return "", "", "", recs[0].URLProblem
	}
	return repo, tag, url, ""
}

// compare says why a version is wanted ("" when it is staged complete), with
// a one-line detail for an incomplete one.
func compare(projects, name, version string, vs *staging.VersionStatus) (reason, detail string) {
	if vs == nil {
		dir := filepath.Join(projects, name, version)
		if _, err := os.Lstat(dir); err == nil {
			return request.ReasonIncomplete, dir + " exists but holds no project.ini"
		}
		return request.ReasonMissing, ""
	}
	if vs.Error != "" {
		return request.ReasonIncomplete, vs.Error
	}
	var missing, differ []string
	for _, b := range vs.Blobs {
		switch b.State {
		case staging.BlobMissing:
			missing = append(missing, b.Name)
		case staging.BlobMismatch:
			differ = append(differ, b.Name)
		}
	}
	if len(missing) == 0 && len(differ) == 0 {
		return "", ""
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("%s missing: %s", count(len(missing), "blob"), list(missing)))
	}
	if len(differ) > 0 {
		parts = append(parts, fmt.Sprintf("%s differ from the installed hash: %s", count(len(differ), "blob"), list(differ)))
	}
	return request.ReasonIncomplete, strings.Join(parts, "; ")
}

// count renders "1 blob", "2 blobs".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// list names the first few items of s.
func list(s []string) string {
	if len(s) <= maxDetail {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:maxDetail], ", ") + fmt.Sprintf(" and %d more", len(s)-maxDetail)
}

// unresolvable reports a record, its text made safe to print.
func unresolvable(r cycleserver.Project, problem string) request.Unresolvable {
	return request.Unresolvable{Name: printable(r.Name, 1024), Version: printable(r.Version, 1024),
		URL: printable(r.URL, 4096), Problem: printable(problem, 4096)}
}

// printable returns s unchanged when it is valid text without control
// characters and at most max bytes, else a quoted, clipped form that is.
func printable(s string, max int) string {
	ok := utf8.ValidString(s)
	for _, r := range s {
		if !ok || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			ok = false
			break
		}
	}
	if !ok {
		s = strconv.QuoteToASCII(s)
	}
	if len(s) > max {
		cut := max - 3
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// inventory lists, per staged project, its staged versions and every file
// under its blobs/ folder with size and sha256 (hasher reuses what status
// hashed). Everything is reached on folder handles from the root, never
// through a symlink (internal/beneath). Names unusable in a request are
// skipped with a warning.
func inventory(ctx context.Context, root string, st *staging.StatusReport, hasher *staging.Hasher) ([]request.StagedProject, []string, error) {
	var warnings []string
	versions := map[string][]string{}
	for _, v := range st.Versions {
		versions[v.Name] = append(versions[v.Name], v.Version)
	}
	projects := staging.ProjectsDir(root)
	rootDir, err := beneath.OpenDir(root)
	if err != nil {
		return nil, nil, err
	}
	defer rootDir.Close()
	proj, err := rootDir.OpenDir("work/staging/projects")
	if errors.Is(err, fs.ErrNotExist) {
		return []request.StagedProject{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer proj.Close()
	entries, err := proj.ReadDir()
	if err != nil {
		return nil, nil, err
	}
	out := []request.StagedProject{}
	for _, e := range entries {
		if !e.Type.IsDir() {
			continue
		}
		name := e.Name
		if !manifest.ValidName(name) {
			warnings = append(warnings, fmt.Sprintf("%s: project folder name %s is not usable; left out of the inventory", projects, strconv.Quote(name)))
			continue
		}
		p := request.StagedProject{Name: name, Blobs: []request.StagedBlob{}}
		for _, v := range versions[name] {
			if manifest.ValidName(v) {
				p.Versions = append(p.Versions, v)
			}
		}
		sort.Slice(p.Versions, func(i, j int) bool { return cycleserver.CompareVersions(p.Versions[i], p.Versions[j]) < 0 })
		blobs, w, err := stagedBlobs(ctx, proj, name, hasher)
		if err != nil {
			return nil, nil, fmt.Errorf("project %s: %w", name, err)
		}
		warnings = append(warnings, w...)
		p.Blobs = blobs
		if len(p.Versions) == 0 && len(p.Blobs) == 0 {
			continue
		}
		out = append(out, p)
	}
	return out, warnings, nil
}

// stagedBlobs walks one project's blobs/ folder on handles. Only regular
// files are listed: each is opened without following a symlink and without
// blocking, so a symlink, FIFO or device planted there is left out with a
// warning, and no hash or size of a file outside the staging tree reaches
// request.json. A sparse file (holes, as a planted 1 TiB file would have)
// is left out too rather than read.
func stagedBlobs(ctx context.Context, proj *beneath.Dir, name string, hasher *staging.Hasher) ([]request.StagedBlob, []string, error) {
	out := []request.StagedBlob{}
	var warnings []string
	dir := filepath.Join(proj.Name, name, "blobs")
	d, err := proj.OpenDir(name + "/blobs")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return out, nil, nil
	case errors.Is(err, beneath.ErrSymlink):
		return out, []string{fmt.Sprintf("%s is a symlink or not a folder; left out of the inventory", dir)}, nil
	case err != nil:
		return nil, nil, err
	}
	defer d.Close()
	err = d.Walk(ctx, func(rel string, parent *beneath.Dir, base string, st *unix.Stat_t) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		mode := beneath.ModeType(st.Mode)
		if mode.IsDir() {
			return nil
		}
		if !manifest.ValidBlobName(rel) {
			warnings = append(warnings, fmt.Sprintf("%s: blob name %s is not usable; left out of the inventory", dir, strconv.Quote(rel)))
			return nil
		}
		if !mode.IsRegular() {
			warnings = append(warnings, fmt.Sprintf("%s is %s, not a regular file; left out of the inventory", p, regfile.Describe(mode)))
			return nil
		}
		f, err := parent.Open(base)
		var nr *beneath.NotRegularError
		if errors.As(err, &nr) {
			warnings = append(warnings, err.Error()+"; left out of the inventory")
			return nil
		}
		if err != nil {
			return err
		}
		defer f.Close()
		var fst unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
			return err
		}
		if fst.Blocks*512 < fst.Size && fst.Size > 1<<20 {
			warnings = append(warnings, fmt.Sprintf("%s is a sparse file (%d bytes, most of them holes); left out of the inventory", p, fst.Size))
			return nil
		}
		sum, err := hasher.Sum(ctx, f, fst.Size)
		if err != nil {
			return err
		}
		out = append(out, request.StagedBlob{Name: rel, SHA256: sum, Size: fst.Size})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, warnings, nil
}
