package mirror

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/scan"
)

// TestDepRef: a template's dependency maps to a ref as a short name does,
// with the template's version or the latest; names no repository is known
// for do not map.
func TestDepRef(t *testing.T) {
	for _, tc := range []struct {
		dep  scan.Dependency
		want string // Ref.String(), "" for an error
	}{
		{scan.Dependency{Project: "healthagent", Spec: "default"}, "healthagent@latest"},
		{scan.Dependency{Project: "monitoring", Spec: "default", Version: "1.0.3"}, "monitoring@1.0.3"},
		{scan.Dependency{Project: "cyclecloud-pbspro", Spec: "default"}, "pbspro@latest"},
		{scan.Dependency{Project: "customthing", Spec: "default"}, ""},
	} {
		r, err := depRef(tc.dep)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%+v: mapped to %s, want an error", tc.dep, r)
		case tc.want != "" && (err != nil || r.String() != tc.want):
			t.Errorf("%+v: %s, %v; want %s", tc.dep, r, err, tc.want)
		}
	}
}

// TestCoverage: a dependency with a version is met by that version of its
// repository ("v" prefix or not), one without by any version.
func TestCoverage(t *testing.T) {
	c := coverage{}
	c.add("Azure/cyclecloud-slurm", "v4.0.9")
	for ref, want := range map[string]bool{
		"slurm@4.0.9":      true,
		"slurm@v4.0.9":     true,
		"slurm":            true,
		"slurm@3.0.12":     false,
		"monitoring":       false,
		"monitoring@1.0.3": false,
	} {
		r, err := ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.has(r); got != want {
			t.Errorf("%s: covered %v, want %v", ref, got, want)
		}
	}
}

// TestReadinessRequiredBlob: a blob the server already holds (Have) is not
// carried, so its scripts are not scanned: the readiness scan says so
// (incomplete, with a note) and a jetpack download of it is not counted
// as a blob the bundle carries.
func TestReadinessRequiredBlob(t *testing.T) {
	s := newFake(t, githubtest.Options{Content: githubtest.ScanWorld()})
	o := testOptions(t, s)
	const held = "azure-slurm-install-pkg-4.0.9.tar.gz"
	o.Have = func(project, blob, sha string) bool { return project == "slurm" && blob == held }
	ref, err := ParseRef("slurm@4.0.9")
	if err != nil {
		t.Fatal(err)
	}
	res, err := newFetcher(t, o).Fetch(context.Background(), []Ref{ref}, filepath.Join(t.TempDir(), "b.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Readiness == nil || len(res.Readiness.Projects) != 1 {
		t.Fatalf("readiness %+v", res.Readiness)
	}
	p := res.Readiness.Projects[0]
	if !p.Incomplete || !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, held) && strings.Contains(n, "not carried") }) {
		t.Errorf("incomplete %v, notes %q; want the held archive named as not scanned", p.Incomplete, p.Notes)
	}
	for _, f := range p.Findings {
		if strings.Contains(f.File, held+"!") {
			t.Errorf("finding from inside the held archive: %+v", f)
		}
		if f.Kind == scan.KindBlob && f.Target == held && !strings.Contains(f.Detail, "server to hold") {
			t.Errorf("download of the held blob: %+v", f)
		}
	}
	if got := scan.Summary(&p, ""); !strings.Contains(got, "(scan incomplete)") {
		t.Errorf("summary %q does not say the scan is incomplete", got)
	}
	if len(res.LeftOut) != 2 {
		t.Errorf("left out %+v, want healthagent and monitoring", res.LeftOut)
	}
}
