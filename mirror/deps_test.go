package mirror

import (
	"testing"

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
