package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report in its JSON contract:
// {"projects":[{"name","version","findings":[{"kind","target","file","line",
// "spec","satisfied","detail"}],"dependencies":[{"project","spec","version"}]}]}.
// Empty lists are [], never null.
func (r *Report) WriteJSON(w io.Writer) error {
	out := Report{Projects: make([]Project, 0, len(r.Projects))}
	for _, p := range r.Projects {
		if p.Findings == nil {
			p.Findings = []Finding{}
		}
		if p.Dependencies == nil {
			p.Dependencies = []Dependency{}
		}
		out.Projects = append(out.Projects, p)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// Unsatisfied counts the findings the bundle or staging tree does not meet.
func (r *Report) Unsatisfied() int {
	n := 0
	for _, p := range r.Projects {
		for _, f := range p.Findings {
			if !f.Satisfied {
				n++
			}
		}
	}
	return n
}

// Incomplete reports whether any project's scan was cut short or could
// not read something (Project.Incomplete).
func (r *Report) Incomplete() bool {
	for _, p := range r.Projects {
		if p.Incomplete {
			return true
		}
	}
	return false
}

// needs is what a set of findings reaches outside the bundle.
type needs struct {
	hosts    map[string]bool
	pypi     bool
	repos    bool // OS package repositories
	images   map[string]bool
	missing  map[string]bool // blobs
	computed map[string]bool // blob names known only at run time
	varHosts bool
	mayFetch int // satisfied local installs whose dependencies may come from the network
}

func needsOf(fs []Finding) needs {
	n := needs{hosts: map[string]bool{}, images: map[string]bool{}, missing: map[string]bool{}, computed: map[string]bool{}}
	for _, f := range fs {
		if f.Satisfied {
			if f.mayFetch {
				n.mayFetch++
			}
			continue
		}
		switch f.Kind {
		case KindURL, KindGit:
			n.addHost(hostOf(f.Target))
		case KindContainer:
			n.images[f.Target] = true
			n.addHost(stripPort(Registry(f.Target)))
		case KindPip:
			if f.pypi {
				n.pypi = true
			}
		case KindPackage:
			n.repos = true
		case KindBlob:
			if strings.HasPrefix(f.Detail, "blob name is computed") {
				n.computed[f.Target] = true
			} else {
				n.missing[f.Target] = true
			}
		}
	}
	return n
}

// hostList is the sorted hosts reached, PyPI included.
func (n needs) hostList() []string {
	var hs []string
	for h := range n.hosts {
		hs = append(hs, h)
	}
	if n.pypi && !n.hosts["pypi.org"] {
		hs = append(hs, "pypi.org")
	}
	sort.Strings(hs)
	return hs
}

func (n *needs) addHost(h string) {
	if h == "" || strings.ContainsAny(h, "${}%<>") {
		n.varHosts = true
		return
	}
	n.hosts[h] = true
}

// phrase renders the needs: "5 hosts and PyPI", "" when nothing is reached.
func (n needs) reach() string {
	var parts []string
	if len(n.hosts) > 0 {
		parts = append(parts, plural(len(n.hosts), "host", "hosts"))
	}
	if n.pypi {
		parts = append(parts, "PyPI")
	}
	if n.repos {
		parts = append(parts, "the OS package repositories")
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// caveat is the note on local installs that may still fetch dependencies.
func (n needs) caveat() string {
	if n.mayFetch == 0 {
		return ""
	}
	return plural(n.mayFetch, "local install", "local installs") + " may fetch dependencies from package repositories or PyPI"
}

func (n needs) blobs() string {
	var parts []string
	if len(n.missing) > 0 {
		parts = append(parts, plural(len(n.missing), "blob", "blobs")+" missing")
	}
	if len(n.computed) > 0 {
		parts = append(parts, plural(len(n.computed), "blob name", "blob names")+" known only at boot")
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Summary is the one-line readiness of one project version, for fetch and
// install to print: "slurm 4.0.9: nodes will reach 5 hosts and PyPI at
// boot, 1 blob missing — ccmirror scan slurm-4.0.9.tar". hint (may be "")
// is appended after " — ": the command that shows the details.
func Summary(p *Project, hint string) string {
	n := needsOf(p.Findings)
	var s string
	reach, blobs := n.reach(), n.blobs()
	switch {
	case reach != "" && blobs != "":
		s = fmt.Sprintf("%s %s: nodes will reach %s at boot, %s", p.Name, p.Version, reach, blobs)
	case reach != "":
		s = fmt.Sprintf("%s %s: nodes will reach %s at boot", p.Name, p.Version, reach)
	case blobs != "":
		s = fmt.Sprintf("%s %s: nodes reach nothing outside the bundle at boot, but %s", p.Name, p.Version, blobs)
	case p.Incomplete:
		s = fmt.Sprintf("%s %s: nothing found outside the bundle, but the scan is incomplete", p.Name, p.Version)
	case n.caveat() != "":
		s = fmt.Sprintf("%s %s: nodes reach nothing outside the bundle at boot, but %s", p.Name, p.Version, n.caveat())
	default:
		s = fmt.Sprintf("%s %s: ready for the air gap: nodes reach nothing outside the bundle at boot", p.Name, p.Version)
	}
	if c := n.caveat(); c != "" && (reach != "" || blobs != "") {
		s += "; " + c
	}
	if p.Incomplete && (reach != "" || blobs != "") {
		s += " (scan incomplete)"
	}
	if hint != "" {
		s += " — " + hint
	}
	return s
}

// Readiness returns Summary for every project of the report, in order.
func (r *Report) Readiness(hint string) []string {
	out := make([]string, 0, len(r.Projects))
	for i := range r.Projects {
		out = append(out, Summary(&r.Projects[i], hint))
	}
	return out
}

// Verdict is the one-line conclusion of a whole report.
func (r *Report) Verdict() string {
	var all []Finding
	for _, p := range r.Projects {
		all = append(all, p.Findings...)
	}
	n := needsOf(all)
	deps := r.missingDeps()
	reach, blobs := n.reach(), n.blobs()
	var s string
	switch {
	case len(r.Projects) == 0:
		return "verdict: nothing scanned"
	case reach == "" && blobs == "" && r.Incomplete():
		s = "verdict: UNKNOWN: nothing found outside the bundle, but the scan is incomplete (see the notes)"
	case reach == "" && blobs == "":
		s = "verdict: READY: nodes reach nothing outside the bundle at boot"
	default:
		var parts []string
		if reach != "" {
			parts = append(parts, "nodes will reach "+reach+" at boot")
		}
		if len(n.images) > 0 {
			parts = append(parts, plural(len(n.images), "container image", "container images")+" to carry")
		}
		if blobs != "" {
			parts = append(parts, blobs)
		}
		s = "verdict: NOT READY: " + strings.Join(parts, ", ")
	}
	if c := n.caveat(); c != "" {
		s += "; " + c
	}
	if len(deps) > 0 {
		s += "; templates also include " + strings.Join(deps, ", ") + " (not scanned here)"
	}
	if r.Incomplete() && (reach != "" || blobs != "") {
		s += "; scan incomplete (see the notes)"
	}
	return s
}

// missingDeps names the dependencies not among the report's projects.
func (r *Report) missingDeps() []string {
	have := map[string]bool{}
	for _, p := range r.Projects {
		have[p.Name] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range r.Projects {
		for _, d := range p.Dependencies {
			if !have[d.Project] && !seen[d.Project] {
				seen[d.Project] = true
				out = append(out, d.Project)
			}
		}
	}
	sort.Strings(out)
	return out
}

// WriteText writes the report for people: per project, its findings
// grouped by kind, one line each with file:line, then its dependencies
// and notes, and a last line with the verdict.
func (r *Report) WriteText(w io.Writer) error {
	bw := &errWriter{w: w}
	for _, in := range r.Inputs {
		fmt.Fprintf(bw, "%s: %s\n", in.Name, in.Trust)
	}
	for _, p := range r.Projects {
		fmt.Fprintf(bw, "\n%s %s", p.Name, p.Version)
		if p.From != "" {
			fmt.Fprintf(bw, " (%s)", p.From)
		}
		fmt.Fprintln(bw)
		if len(p.Findings) == 0 {
			fmt.Fprintln(bw, "  nothing reached: no URL, package, pip, container, git or blob use found")
		}
		for _, kind := range kindOrder {
			var fs []Finding
			for _, f := range p.Findings {
				if f.Kind == kind {
					fs = append(fs, f)
				}
			}
			if len(fs) == 0 {
				continue
			}
			open := 0
			for _, f := range fs {
				if !f.Satisfied {
					open++
				}
			}
			fmt.Fprintf(bw, "  %s: %d, %d unsatisfied\n", kind, len(fs), open)
			tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
			for _, f := range fs {
				mark := "ok"
				if !f.Satisfied {
					mark = "NEED"
					if f.Kind == KindBlob {
						mark = "MISSING"
					}
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s:%d\t%s\n", mark, clean(f.Target), clean(f.File), f.Line, clean(f.Detail))
			}
			tw.Flush()
		}
		if len(p.Dependencies) > 0 {
			var ds []string
			for _, d := range p.Dependencies {
				s := d.Project + ":" + d.Spec
				if d.Version != "" {
					s += ":" + d.Version
				}
				ds = append(ds, s)
			}
			fmt.Fprintf(bw, "  depends on (cluster templates): %s\n", strings.Join(ds, ", "))
		}
		if hs := needsOf(p.Findings).hostList(); len(hs) > 0 {
			fmt.Fprintf(bw, "  hosts reached at boot: %s\n", clean(strings.Join(hs, ", ")))
		}
		for _, n := range p.Notes {
			fmt.Fprintf(bw, "  note: %s\n", clean(n))
		}
		fmt.Fprintf(bw, "  %s\n", Summary(&p, ""))
	}
	fmt.Fprintf(bw, "\n%s\n", r.Verdict())
	return bw.err
}

// clean keeps control characters from a hostile file out of the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
