package update

import (
	"fmt"
	"io"
	"time"

	"github.com/ccmirror/ccmirror/internal/text"
)

// WriteText prints the report for people: the index accepted, then each
// wanted version (install / already staged / not offered) and a summary
// line ("up to date: N project versions" when nothing was to do).
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	if ix := r.Index; ix != nil {
		prev := "first index seen from this key"
		if ix.Previous != nil {
			prev = fmt.Sprintf("previously accepted %d", *ix.Previous)
		}
		ew.printf("index: sequence %d (%s), written %s (%s ago), signed by %s %s, %d bundles, from %s\n",
			ix.Sequence, prev, ix.Updated.UTC().Format(time.RFC3339), roundAge(time.Duration(ix.Age)*time.Second),
			ix.Principal, ix.Signer, ix.Bundles, r.Source)
	}
	verb := map[string]string{ActionInstall: "install:", ActionInstalled: "installed:", ActionFailed: "FAILED:"}
	for _, it := range r.Install {
		v := verb[it.Action]
		if v == "" {
			v = "install:"
		}
		line := fmt.Sprintf("  %-16s %s %s <- %s (%s", v, it.Project, it.Version, it.File, text.HumanBytes(it.Size))
		if t := it.Transfer; t != nil {
			line += fmt.Sprintf(", downloaded %s", text.HumanBytes(t.Downloaded))
			if t.ResumedFrom > 0 {
				line += fmt.Sprintf(", resumed at %s", text.HumanBytes(t.ResumedFrom))
			}
		}
		line += ")"
		if it.Error != "" {
			line += ": " + text.OneLine(it.Error)
		}
		ew.printf("%s\n", line)
	}
	for _, it := range r.Staged {
		ew.printf("  %-16s %s %s\n", "already staged:", it.Project, it.Version)
	}
	for _, it := range r.NotOffered {
		line := fmt.Sprintf("  %-16s %s %s (%s", "not offered:", it.Project, it.Version, it.Reason)
		if it.Detail != "" {
			line += "; " + it.Detail
		}
		ew.printf("%s)\n", line)
	}
	installed := 0
	for _, it := range r.Install {
		if it.Action == ActionInstalled {
			installed++
		}
	}
	switch {
	case r.Status == StatusUpToDate:
		ew.printf("up to date: %d project %s\n", len(r.Staged), plural(len(r.Staged), "version", "versions"))
	case r.DryRun:
		ew.printf("dry run: would install %d project %s; nothing was changed\n", len(r.Install), plural(len(r.Install), "version", "versions"))
	default:
		ew.printf("installed %d of %d project %s (%s downloaded)\n", installed, len(r.Install),
			plural(len(r.Install), "version", "versions"), text.HumanBytes(r.Downloaded))
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}
