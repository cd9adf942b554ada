package main

import (
	"fmt"

	"github.com/ccmirror/ccmirror/scan"
)

// readiness is one project version's line of the readiness summary fetch
// and install end with, as --json gives it.
type readiness struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Summary is scan.Summary: "slurm 4.0.9: nodes will reach 5 hosts and
	// PyPI at boot, 1 blob missing — ccmirror scan slurm-4.0.9.tar".
	Summary string `json:"summary"`
	// Unsatisfied counts the needs the bundle (or staging tree) does not
	// meet; 0 with Incomplete false is ready for the air gap.
	Unsatisfied int  `json:"unsatisfied"`
	Incomplete  bool `json:"incomplete"`
}

// readinessOf is the readiness summary of a scan, hint naming the command
// that shows the details; [] for no scan.
func readinessOf(rep *scan.Report, hint string) []readiness {
	out := []readiness{}
	if rep == nil {
		return out
	}
	for i := range rep.Projects {
		p := &rep.Projects[i]
		n := 0
		for _, f := range p.Findings {
			if !f.Satisfied {
				n++
			}
		}
		out = append(out, readiness{Name: p.Name, Version: p.Version, Summary: scan.Summary(p, hint), Unsatisfied: n, Incomplete: p.Incomplete})
	}
	return out
}

// printReadiness prints one line per project version on stdout.
func printReadiness(e *env, ready []readiness) {
	for _, r := range ready {
		fmt.Fprintln(e.stdout, printable(r.Summary, maxErrorLine))
	}
}
