// Package scan tells, before a bundle crosses the air gap, what the nodes of
// a CycleCloud cluster will still reach at boot: it reads the node-side
// files of a project version (specs/*/cluster-init/**, specs/*/chef/**) and
// the scripts inside its blob archives, and lists every URL, OS package,
// pip package, container image, git repository and project blob they use,
// with whether the bundle (or the staging tree) already satisfies it. It
// also reads the cluster templates for the other projects they include.
//
// scan is a leaf: it reads bundles through manifest and never imports
// mirror or staging, so fetch, install and the CLI can all call it.
//
// Entry points: ScanBundle (a bundle stream), ScanRoot (a staging tree),
// ScanTree and ScanArchive (the building blocks), Dependencies (templates
// only, for fetch --with-deps), Summary and Report.WriteText/WriteJSON.
package scan

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Kinds of Finding.
const (
	KindURL       = "url"       // an http, https or ftp URL (curl, wget, repo files, deb lines, …)
	KindPackage   = "package"   // an OS package (yum, dnf, apt, zypper, tdnf) or repository
	KindPip       = "pip"       // a Python package pip installs
	KindContainer = "container" // a container image docker, podman or enroot pulls
	KindGit       = "git"       // a repository git clones
	KindBlob      = "blob"      // a project blob fetched with jetpack download
)

// kindOrder is the order kinds are listed in text output.
var kindOrder = []string{KindBlob, KindURL, KindPackage, KindPip, KindContainer, KindGit}

// Finding is one thing a node-side file reaches for.
type Finding struct {
	Kind   string `json:"kind"`
	Target string `json:"target"` // as written in the file (variables unexpanded)
	// File is relative to the project's source root
	// ("specs/default/cluster-init/scripts/10-mount.sh"); inside a blob
	// archive "blobs/NAME!inner/path".
	File string `json:"file"`
	Line int    `json:"line"` // 1-based
	Spec string `json:"spec"` // the spec the file belongs to; "" for blobs
	// Satisfied is true when what the bundle or staging tree holds meets
	// the need (a carried blob, a local package file).
	Satisfied bool   `json:"satisfied"`
	Detail    string `json:"detail"`

	blobProject string // KindBlob: the project the blob belongs to
	pypi        bool   // KindPip: reached on PyPI (no other index given)
	mayFetch    bool   // a satisfied local install whose dependencies may come from the network
}

// Dependency is another project a cluster template includes with
// [[[cluster-init cyclecloud/NAME:SPEC[:VERSION]]]].
type Dependency struct {
	Project string `json:"project"`
	Spec    string `json:"spec"`
	Version string `json:"version"` // "" when the template names none (or only a variable)
}

// Project is what one project version's nodes reach for.
type Project struct {
	Name         string       `json:"name"`
	Version      string       `json:"version"`
	Findings     []Finding    `json:"findings"`
	Dependencies []Dependency `json:"dependencies"`
	// Notes says what the scan skipped (links, never followed) or cut
	// short (limits, unreadable archives).
	Notes []string `json:"-"`
	// Incomplete is true when a limit was reached or something could not
	// be read: the findings may not be all.
	Incomplete bool `json:"-"`
	// From names where the project was read (a bundle file, a staged folder).
	From string `json:"-"`
}

// Report is the result of a scan: every project version read.
type Report struct {
	Projects []Project `json:"projects"`
	// Inputs says, per bundle or root scanned, whether its signature was
	// checked.
	Inputs []Input `json:"-"`
}

// Input is one bundle or staging root a Report was made from.
type Input struct {
	Name string
	// Trust is one line on the signature: "signature checked: good
	// signature by P", or why it was not checked.
	Trust string
}

// Limits bound the work a scan does on hostile input. A limit reached is
// reported in Project.Notes, never silently.
type Limits struct {
	MaxFileSize       int64 // bytes of one file scanned; the rest is skipped
	MaxLineLength     int   // bytes of one (logical) line; longer lines are skipped
	MaxArchiveEntries int   // entries of one archive or tree visited
	MaxArchiveBytes   int64 // decompressed bytes read from one archive
	MaxFindings       int   // findings kept per project version
	MaxSpool          int64 // bytes of a zip blob copied to a temporary file to read it from a stream
}

// DefaultLimits are generous for real projects (slurm's largest install
// archive is tens of MiB) and small enough for a hostile one.
var DefaultLimits = Limits{
	MaxFileSize:       8 << 20,
	MaxLineLength:     64 << 10,
	MaxArchiveEntries: 100000,
	MaxArchiveBytes:   2 << 30,
	MaxFindings:       10000,
	MaxSpool:          2 << 30,
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits
	if l.MaxFileSize > 0 {
		d.MaxFileSize = l.MaxFileSize
	}
	if l.MaxLineLength > 0 {
		d.MaxLineLength = l.MaxLineLength
	}
	if l.MaxArchiveEntries > 0 {
		d.MaxArchiveEntries = l.MaxArchiveEntries
	}
	if l.MaxArchiveBytes > 0 {
		d.MaxArchiveBytes = l.MaxArchiveBytes
	}
	if l.MaxFindings > 0 {
		d.MaxFindings = l.MaxFindings
	}
	if l.MaxSpool > 0 {
		d.MaxSpool = l.MaxSpool
	}
	return d
}

// Entry is one entry of a Tree handed to a walk callback. Open is valid
// only during the callback. Skip is non-empty for an entry that is not a
// regular file ("symbolic link", "FIFO", …): it is never opened, and the
// scan notes it when it lies where node-side files live.
type Entry struct {
	Path string // slash-separated, relative to the project's source root
	Size int64
	Open func() (io.Reader, error)
	Skip string
}

// Tree is the files of one project version, in any order, walked once.
type Tree interface {
	Walk(ctx context.Context, visit func(Entry) error) error
}

// SpecOf returns the spec of a source path ("specs/SPEC/cluster-init/…" or
// "specs/SPEC/chef/…") and whether nodes run it.
func SpecOf(p string) (spec string, nodeSide bool) {
	el := strings.Split(p, "/")
	if len(el) >= 4 && el[0] == "specs" && el[1] != "" && (el[2] == "cluster-init" || el[2] == "chef") {
		return el[1], true
	}
	return "", false
}

// isTemplate reports whether p is a cluster template (templates/*.txt).
func isTemplate(p string) bool {
	dir, file := path.Split(p)
	return dir == "templates/" && strings.HasSuffix(strings.ToLower(file), ".txt")
}

// collector gathers one project version's findings within the limits.
type collector struct {
	lim        Limits
	findings   []Finding
	seen       map[string]bool
	notes      []string
	incomplete bool
	full       bool
}

func newCollector(lim Limits) *collector {
	return &collector{lim: lim.orDefault(), seen: map[string]bool{}}
}

func (c *collector) add(f Finding) {
	key := f.Kind + "\x00" + f.Target + "\x00" + f.File + "\x00" + fmt.Sprint(f.Line)
	if c.seen[key] {
		return
	}
	if len(c.findings) >= c.lim.MaxFindings {
		if !c.full {
			c.full = true
			c.cut(fmt.Sprintf("more than %d findings: the rest are not listed", c.lim.MaxFindings))
		}
		return
	}
	c.seen[key] = true
	c.findings = append(c.findings, f)
}

// maxNotes bounds the notes kept per project version.
const maxNotes = 200

// note records something the scan skipped on purpose (a link not followed).
func (c *collector) note(s string) {
	switch {
	case len(c.notes) < maxNotes:
		c.notes = append(c.notes, s)
	case len(c.notes) == maxNotes:
		c.notes = append(c.notes, fmt.Sprintf("more than %d notes: the rest are not listed", maxNotes))
	}
}

// merge adds findings and notes of another scan.
func (c *collector) merge(fs []Finding, notes []string, incomplete bool) {
	for _, f := range fs {
		c.add(f)
	}
	for _, n := range notes {
		c.note(n)
	}
	c.incomplete = c.incomplete || incomplete
}

// cut records something the scan could not read or cut short: the scan
// is then incomplete.
func (c *collector) cut(s string) {
	c.incomplete = true
	c.note(s)
}

// ScanTree scans one project version's tree: every file under
// specs/*/cluster-init/** and specs/*/chef/**, and templates/*.txt for
// dependencies on other projects (self, the project's own name, is left
// out). Findings are not yet resolved against held blobs: Satisfied is set
// for local installs only; call Resolve for the blobs.
func ScanTree(ctx context.Context, name, version string, t Tree, lim Limits) (*Project, error) {
	c := newCollector(lim)
	deps := depSet{self: name}
	entries := 0
	err := t.Walk(ctx, func(e Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries++
		if entries > c.lim.MaxArchiveEntries {
			c.cut(fmt.Sprintf("more than %d files in the source tree: the rest were not scanned", c.lim.MaxArchiveEntries))
			return errStop
		}
		spec, node := SpecOf(e.Path)
		tmpl := isTemplate(e.Path)
		if !node && !tmpl {
			return nil
		}
		if e.Skip != "" {
			if skippedKinds[e.Skip] {
				c.note(fmt.Sprintf("%s: %s, not followed", e.Path, e.Skip))
			} else {
				c.cut(fmt.Sprintf("%s: %s: not scanned", e.Path, e.Skip))
			}
			return nil
		}
		r, err := e.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		if tmpl {
			return deps.read(ctx, r, e.Path, c)
		}
		return scanFile(ctx, c, e.Path, spec, e.Path, e.Size, r)
	})
	if err != nil && err != errStop {
		return nil, err
	}
	return &Project{Name: name, Version: version, Findings: c.findings, Dependencies: deps.list(), Notes: c.notes, Incomplete: c.incomplete}, nil
}

// skippedKinds are the Entry.Skip values of entries skipped on purpose;
// any other Skip means the scan could not read something.
var skippedKinds = map[string]bool{"symbolic link": true, "hard link": true, "FIFO": true,
	"device": true, "socket": true, "special file": true}

// ArchiveScan is what the scripts inside one blob archive reach.
type ArchiveScan struct {
	Findings   []Finding
	Notes      []string
	Incomplete bool // a limit was reached or part of the archive was unreadable
}

// ScanArchive scans the scripts inside one blob archive (tar, tar.gz, tgz
// or zip, by the name's suffix) read from r, and returns them with File
// "blobs/NAME!inner/path". size is the blob's length (needed for zip read
// from a stream; -1 when unknown). A blob that is not an archive yields
// nothing. A damaged archive is a note, not an error: only ctx's error and
// reading r fail it. The notes say what was skipped or cut short.
func ScanArchive(ctx context.Context, name string, r io.Reader, size int64, lim Limits) (*ArchiveScan, error) {
	c := newCollector(lim)
	if err := scanArchive(ctx, c, name, r, size); err != nil {
		return nil, err
	}
	return &ArchiveScan{Findings: c.findings, Notes: c.notes, Incomplete: c.incomplete}, nil
}

// IsArchive reports whether a blob name is an archive ScanArchive reads.
func IsArchive(name string) bool { return archiveFormat(name) != "" }

func archiveFormat(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return "tgz"
	case strings.HasSuffix(n, ".tar"):
		return "tar"
	case strings.HasSuffix(n, ".zip"):
		return "zip"
	}
	return ""
}

// Holder answers whether a blob of a project is held (carried by the
// bundle or staged), for Resolve.
type Holder interface {
	// Blobs lists the blob names held for project, and where ("carried by
	// the bundle", "staged in DIR").
	Blobs(project string) (names []string, where string)
}

// Resolve sets Satisfied and Detail of every blob finding of p from h.
// A blob name with variables ($V, ${V}, {v}) is satisfied when a held blob
// matches it and it has enough literal text to mean something.
func Resolve(p *Project, h Holder) {
	for i := range p.Findings {
		f := &p.Findings[i]
		if f.Kind != KindBlob {
			continue
		}
		proj := f.blobProject
		if proj == "" || strings.ContainsAny(proj, "${}%") {
			proj = p.Name // --project $CYCLECLOUD_PROJECT_NAME: this project
		}
		names, where := h.Blobs(proj)
		ok, match, computed := matchBlob(f.Target, names)
		owner := ""
		if proj != p.Name {
			owner = " of project " + proj
		}
		switch {
		case ok && match == f.Target:
			f.Satisfied, f.Detail = true, "blob"+owner+" "+where
		case ok:
			f.Satisfied, f.Detail = true, "matches blob "+match+owner+" "+where
		case computed:
			f.Satisfied, f.Detail = false, "blob name is computed at run time: cannot tell whether it is "+where+"; jetpack download fails at boot if it is not"
		default:
			f.Satisfied, f.Detail = false, "blob"+owner+" is not "+where+": jetpack download fails at boot"
		}
	}
}

// sortFindings orders findings by file, line, kind, target.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Target < b.Target
	})
}
