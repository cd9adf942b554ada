package scan_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/scan"
	"github.com/ccmirror/ccmirror/scan/scantest"
)

// The readiness line fetch and install print: scan the bundle just written
// (or, after install, scan.ScanRoot with the staged NAME@VERSION).
func ExampleSummary() {
	var bundle bytes.Buffer
	m, entries := scantest.Manifest(scantest.Slurm4())
	if err := manifest.WriteBundle(context.Background(), &bundle, m, entries, nil); err != nil {
		panic(err)
	}
	rep, err := scan.ScanBundle(context.Background(), &bundle, scan.BundleOptions{Name: "slurm-4.0.9.tar"})
	if err != nil {
		panic(err)
	}
	for i := range rep.Projects {
		fmt.Println(scan.Summary(&rep.Projects[i], "ccmirror scan slurm-4.0.9.tar"))
	}
	// Output:
	// slurm 4.0.9: nodes will reach 1 host, PyPI and the OS package repositories at boot, 1 blob missing — ccmirror scan slurm-4.0.9.tar
}

// What fetch --with-deps adds: the projects a release's cluster templates
// include, read from its GitHub tag archive.
func ExampleDependencies() {
	archive := scantest.Slurm4().TagArchive()
	deps, err := scan.Dependencies(context.Background(), "slurm", scan.TagArchive(bytes.NewReader(archive)))
	if err != nil {
		panic(err)
	}
	for _, d := range deps {
		fmt.Printf("%s spec %s version %q\n", d.Project, d.Spec, d.Version)
	}
	// Output:
	// healthagent spec default version ""
	// monitoring spec default version "1.0.3"
}
