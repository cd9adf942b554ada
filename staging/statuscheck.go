package staging

import (
	"fmt"
	"strings"
)

// Trouble says, in one line, what in the report needs an admin: versions
// with problems, version folders without project.ini, installs that were
// interrupted. "" means everything staged is as it should be. A running
// install is not trouble, nor, while it runs, its temporary folder.
func (r *StatusReport) Trouble() string {
	var parts []string
	if r.Problems > 0 {
		var bad []string
		for _, v := range r.Versions {
			if !v.OK {
				bad = append(bad, v.Name+" "+v.Version)
			}
		}
		parts = append(parts, fmt.Sprintf("%d version(s) with problems (%s)", r.Problems, strings.Join(bad, ", ")))
	}
	if n := len(r.Incomplete); n > 0 {
		parts = append(parts, fmt.Sprintf("%d incomplete version folder(s) without project.ini (%s)", n, strings.Join(r.Incomplete, ", ")))
	}
	// While an install runs, its own temporary folder looks interrupted.
	if n := len(r.Interrupted); n > 0 && r.InstallRunning == "" {
		parts = append(parts, fmt.Sprintf("%d interrupted install(s), undone by the next install", n))
	}
	return strings.Join(parts, "; ")
}
