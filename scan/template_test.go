package scan

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/ccmirror/ccmirror/scan/scantest"
)

// TestDependencies reads cluster-init lines from templates: other
// projects only, the version when one is given (a variable is none),
// comments and non-template files ignored.
func TestDependencies(t *testing.T) {
	p := &scantest.Project{Name: "slurm", Version: "4.0.9", Repo: "Azure/cyclecloud-slurm", Source: map[string][]byte{
		"templates/slurm.txt": []byte(`[cluster Slurm]
    [[node defaults]]
        [[[cluster-init cyclecloud/healthagent:default]]]
        [[[cluster-init cyclecloud/monitoring:default:1.0.3]]]
        [[[cluster-init cyclecloud/monitoring:default:1.0.3]]]
        [[[cluster-init  cyclecloud/slurm:scheduler:4.0.9 ]]]
        # [[[cluster-init cyclecloud/commented:default]]]
        [[[cluster-init cyclecloud/cvmfs:client:$CvmfsVersion]]]
        [[[cluster-init myproject:default:1.0.0]]]
        [[[configuration]]]
`),
		"templates/other.txt":   []byte("[[[cluster-init cyclecloud/lustre:client:2.1]]]\n"),
		"templates/README.md":   []byte("[[[cluster-init cyclecloud/inreadme:default]]]\n"),
		"specs/default/x.txt":   []byte("[[[cluster-init cyclecloud/notatemplate:default]]]\n"),
		"templates/sub/sub.txt": []byte("[[[cluster-init cyclecloud/nested:default]]]\n"),
	}}
	got, err := Dependencies(context.Background(), "slurm", TagArchive(bytes.NewReader(p.TagArchive())))
	if err != nil {
		t.Fatal(err)
	}
	want := []Dependency{
		{"cvmfs", "client", ""},
		{"healthagent", "default", ""},
		{"lustre", "client", "2.1"},
		{"monitoring", "default", "1.0.3"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dependencies %+v\nwant %+v", got, want)
	}
	if names := Projects(got); !reflect.DeepEqual(names, []string{"cvmfs", "healthagent", "lustre", "monitoring"}) {
		t.Errorf("Projects %v", names)
	}
}

// TestMatchBlob pins how jetpack download names with variables match.
func TestMatchBlob(t *testing.T) {
	held := []string{"azure-slurm-install-pkg-4.0.9.tar.gz", "a.tgz"}
	for _, tc := range []struct {
		name         string
		ok, computed bool
		match        string
	}{
		{"azure-slurm-install-pkg-4.0.9.tar.gz", true, false, "azure-slurm-install-pkg-4.0.9.tar.gz"},
		{"azure-slurm-install-pkg-${V}.tar.gz", true, false, "azure-slurm-install-pkg-4.0.9.tar.gz"},
		{"azure-slurm-install-pkg-$V.tar.gz", true, false, "azure-slurm-install-pkg-4.0.9.tar.gz"},
		{"azure-slurm-pkg-${V}.tar.gz", false, false, ""},
		{"$BLOB", false, true, ""},
		{"{name}", false, true, ""},
		{"${N}.tgz", false, true, ""},
		{"missing.tar.gz", false, false, ""},
	} {
		ok, match, computed := matchBlob(tc.name, held)
		if ok != tc.ok || match != tc.match || computed != tc.computed {
			t.Errorf("%s: %v %q %v, want %v %q %v", tc.name, ok, match, computed, tc.ok, tc.match, tc.computed)
		}
	}
}
