package scan

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/ccmirror/ccmirror/manifest"
)

// clusterInit matches a template's [[[cluster-init cyclecloud/NAME:SPEC[:VERSION]]]].
var clusterInit = regexp.MustCompile(`^\s*\[\[\[\s*cluster-init\s+cyclecloud/([^:\]\s]+):([^:\]\s]+)(?::([^\]\s]+))?\s*\]\]\]`)

// depSet collects the dependencies of one project version.
type depSet struct {
	self string
	m    map[Dependency]bool
}

// read scans one template for cluster-init lines naming other projects.
func (d *depSet) read(ctx context.Context, r io.Reader, file string, c *collector) error {
	br := bufio.NewReaderSize(io.LimitReader(r, c.lim.MaxFileSize), 32<<10)
	lr := &lineReader{ctx: ctx, br: br, lang: langText, file: file, c: c, maxLine: c.lim.MaxLineLength}
	for {
		ln, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read %s: %w", file, err)
		}
		m := clusterInit.FindStringSubmatch(ln.text)
		if m == nil || m[1] == d.self {
			continue
		}
		dep := Dependency{Project: m[1], Spec: m[2]}
		// A version given as a template variable ($SlurmVersion) is no
		// version: the latest is meant.
		if v := m[3]; v != "" && manifest.ValidName(v) {
			dep.Version = v
		}
		if !manifest.ValidName(dep.Project) || !manifest.ValidName(dep.Spec) {
			continue
		}
		if d.m == nil {
			d.m = map[Dependency]bool{}
		}
		d.m[dep] = true
	}
}

func (d *depSet) list() []Dependency {
	out := make([]Dependency, 0, len(d.m))
	for dep := range d.m {
		out = append(out, dep)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		if a.Spec != b.Spec {
			return a.Spec < b.Spec
		}
		return a.Version < b.Version
	})
	return out
}

// Dependencies returns the other projects the cluster templates of a
// source tree include ([[[cluster-init cyclecloud/NAME:SPEC[:VERSION]]]] in
// templates/*.txt), sorted and without duplicates; self, the project's own
// name, is left out. Version is "" when a line gives none. This is what
// fetch --with-deps adds: open a tag archive with TagArchive.
func Dependencies(ctx context.Context, self string, t Tree) ([]Dependency, error) {
	c := newCollector(Limits{})
	d := depSet{self: self}
	err := t.Walk(ctx, func(e Entry) error {
		if !isTemplate(e.Path) || e.Skip != "" {
			return nil
		}
		r, err := e.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		return d.read(ctx, r, e.Path, c)
	})
	if err != nil {
		return nil, err
	}
	return d.list(), nil
}

// Projects returns the distinct project names of deps, in order.
func Projects(deps []Dependency) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range deps {
		if !seen[d.Project] {
			seen[d.Project] = true
			out = append(out, d.Project)
		}
	}
	return out
}

// matchBlob reports whether a jetpack download name is held: exactly, or,
// for a name with variables ($V, ${V}, {v}, %s), as a pattern with at
// least four literal characters besides its file extension. computed is true when the name is (all
// but) a variable, so nothing can be told.
func matchBlob(name string, held []string) (ok bool, match string, computed bool) {
	for _, h := range held {
		if h == name {
			return true, h, false
		}
	}
	re, _ := blobPattern(name)
	if re == nil {
		return false, "", false
	}
	// A file extension alone says nothing: "${N}.tar.gz" is any archive.
	if _, literal := blobPattern(trimExt(name)); literal < 4 {
		return false, "", true
	}
	for _, h := range held {
		if re.MatchString(h) {
			return true, h, false
		}
	}
	return false, "", false
}

var blobVar = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$\d|\{[A-Za-z_][A-Za-z0-9_.]*\}|%[sd]|#\{[^}]*\}`)

// blobPattern turns a name with variables into a regexp and counts its
// literal characters; nil when the name has no variables.
func blobPattern(name string) (*regexp.Regexp, int) {
	locs := blobVar.FindAllStringIndex(name, -1)
	if locs == nil {
		return nil, 0
	}
	var b strings.Builder
	b.WriteString("^")
	prev, literal := 0, 0
	for _, l := range locs {
		b.WriteString(regexp.QuoteMeta(name[prev:l[0]]))
		literal += l[0] - prev
		b.WriteString(".+")
		prev = l[1]
	}
	b.WriteString(regexp.QuoteMeta(name[prev:]))
	literal += len(name) - prev
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, 0
	}
	return re, literal
}

// trimExt removes a blob's file extension (".tar.gz", ".rpm", …).
func trimExt(name string) string {
	l := strings.ToLower(name)
	for _, ext := range []string{".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".rpm", ".deb", ".whl", ".gz", ".sh", ".msi", ".exe"} {
		if strings.HasSuffix(l, ext) {
			return name[:len(name)-len(ext)]
		}
	}
	return name
}
