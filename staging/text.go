package staging

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/manifest"
)

// WriteJSON writes any report (InstallReport, VerifyReport, InspectReport,
// StatusReport) as indented JSON, for --json.
func WriteJSON(w io.Writer, report any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

func signerLine(s *SignerInfo, insecure bool) string {
	switch {
	case insecure:
		return "WARNING: signature NOT checked (--insecure-skip-signature)"
	case s == nil:
		return "signer: unknown"
	default:
		return fmt.Sprintf("good signature from %s (%s key %s)", s.Principal, s.KeyType, s.Fingerprint)
	}
}

// WriteText prints the install outcome for humans. A dry run lists every
// blob and file with its action (the exact plan); a real install lists what
// it changed and any conflicts, and summarises the rest.
func (r *InstallReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "bundle %s", r.Bundle)
	if r.HeadSHA256 != "" {
		fmt.Fprintf(bw, " (SHA256SUMS sha256 %s)", short(r.HeadSHA256))
	}
	fmt.Fprintln(bw)
	if r.Signer != nil || r.Insecure {
		fmt.Fprintln(bw, signerLine(r.Signer, r.Insecure))
	}
	fmt.Fprintf(bw, "root %s, owner %s, builder %s\n", r.Root, r.Owner.Spec, r.Builder)
	for _, p := range r.Projects {
		v := p.Version
		if v == "" {
			v = p.BundleVersion
		}
		head := fmt.Sprintf("%s %s", p.Name, v)
		if p.Tag != "" && p.Tag != v {
			head += " (tag " + p.Tag + ")"
		}
		if p.Action != "" {
			what := string(p.Action)
			if p.Action == ActionSkip {
				what = "already installed"
			}
			fmt.Fprintf(bw, "%s -> %s: %s\n", head, p.Dir, what)
		} else {
			fmt.Fprintf(bw, "%s\n", head)
		}
		blobCounts := map[Action]int{}
		for _, it := range p.Blobs {
			blobCounts[it.Action]++
			// A real install names only what needs a look (replaced or
			// conflicting blobs); --dry-run lists everything.
			if r.DryRun || (it.Action != ActionSkip && it.Action != ActionAdd) {
				writeItem(bw, "blob", it)
			}
		}
		if len(p.Blobs) > 0 {
			fmt.Fprintf(bw, "  blobs: %s\n", countLine(blobCounts))
		}
		counts := map[Action]int{}
		for _, it := range p.Files {
			counts[it.Action]++
			if r.DryRun || it.Action == ActionConflict || (p.Action == ActionReplace && it.Action != ActionSkip) {
				writeItem(bw, it.Type, it)
			}
		}
		if len(p.Files) > 0 {
			fmt.Fprintf(bw, "  version folder: %s\n", countLine(counts))
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(bw, "warning: %s\n", w)
	}
	switch r.Status {
	case StatusInstalled:
		fmt.Fprintf(bw, "installed (%s); record %s\n", countLine(r.Counts), r.Record)
	case StatusAlreadyInstalled:
		fmt.Fprintln(bw, "already installed: nothing changed")
	case StatusDryRun:
		fmt.Fprintf(bw, "dry run: nothing changed (%s)\n", countLine(r.Counts))
	case StatusConflict, StatusFailed:
		fmt.Fprintf(bw, "%s: %s\nthe staging tree was not changed\n", r.Status, r.Error)
	}
	return bw.Flush()
}

func writeItem(w io.Writer, kind string, it PlanItem) {
	line := fmt.Sprintf("  %-8s %-7s %s", it.Action, kind, it.Path)
	if it.Type == typeSymlink {
		line += " -> " + it.Target
	}
	if it.Size > 0 {
		line += " (" + text.HumanBytes(it.Size) + ")"
	}
	if it.Reason != "" {
		line += ": " + it.Reason
	}
	fmt.Fprintln(w, line)
}

func countLine(c map[Action]int) string {
	var parts []string
	for _, a := range []Action{ActionAdd, ActionReplace, ActionRemove, ActionSkip, ActionConflict} {
		if c[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[a], a))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// WriteText prints who signed the bundle and what it holds.
func (r *VerifyReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, signerLine(r.Signer, r.Insecure))
	if r.BundleSHA256 != "" {
		fmt.Fprintf(bw, "bundle sha256 %s\n", r.BundleSHA256)
	}
	if r.Manifest != nil {
		writeProjects(bw, r.Manifest.Projects, false)
	}
	fmt.Fprintf(bw, "verified %d payload files, %s: every hash matches\n", r.Files, text.HumanBytes(r.Bytes))
	return bw.Flush()
}

// WriteText prints the bundle's head: projects, blobs with sizes and
// origins, signer key and creation time.
func (r *InspectReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s, created %s by %s\n", r.Schema, r.Created.UTC().Format(time.RFC3339), r.Tool)
	switch {
	case !r.Signed:
		fmt.Fprintln(bw, "unsigned")
	case r.Signature.Error != "":
		fmt.Fprintf(bw, "signed, but the signature is unreadable: %s\n", r.Signature.Error)
	default:
		fmt.Fprintf(bw, "signed by %s key %s, namespace %s (not checked: use verify)\n", r.Signature.KeyType, r.Signature.Fingerprint, r.Signature.Namespace)
	}
	writeProjects(bw, r.Projects, true)
	fmt.Fprintf(bw, "%d payload files, %s\n", r.Files, text.HumanBytes(r.Bytes))
	return bw.Flush()
}

func writeProjects(w io.Writer, ps []manifest.Project, blobs bool) {
	for _, p := range ps {
		var total int64
		for _, b := range p.Blobs {
			total += b.Size
		}
		fmt.Fprintf(w, "%s %s: %s tag %s commit %s\n", p.Name, p.Version, p.Repository, p.Tag, p.Commit)
		fmt.Fprintf(w, "  source %s (%s)\n", p.Source.Path, text.HumanBytes(p.Source.Size))
		fmt.Fprintf(w, "  %d blobs, %s\n", len(p.Blobs), text.HumanBytes(total))
		if !blobs {
			continue
		}
		for _, b := range p.Blobs {
			origin := b.Origin
			if b.Release != "" {
				origin += " " + b.Release
			}
			fmt.Fprintf(w, "    %s (%s) %s\n", b.Name, text.HumanBytes(b.Size), strings.TrimSpace(origin))
		}
		for _, b := range p.Required {
			fmt.Fprintf(w, "    %s: required on the server, sha256 %s\n", b.Name, short(b.SHA256))
		}
	}
}

// WriteText prints every staged version with its problems.
func (r *StatusReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if len(r.Versions) == 0 {
		fmt.Fprintf(bw, "no project versions staged under %s\n", ProjectsDir(r.Root))
	}
	for _, v := range r.Versions {
		state := "ok"
		if !v.OK {
			state = "PROBLEM"
		}
		fmt.Fprintf(bw, "%s %s: %s\n", v.Name, v.Version, state)
		if v.InstalledBy != nil {
			id := "SHA256SUMS sha256 " + short(v.InstalledBy.HeadSHA256)
			if v.InstalledBy.HeadSHA256 == "" {
				id = "sha256 " + short(v.InstalledBy.BundleSHA256)
			}
			fmt.Fprintf(bw, "  installed %s from %s (%s)", v.InstalledBy.Time.Format(time.RFC3339), v.InstalledBy.Bundle, id)
			if v.InstalledBy.Signer != nil {
				fmt.Fprintf(bw, ", signed by %s", v.InstalledBy.Signer.Principal)
			} else if v.InstalledBy.Insecure {
				fmt.Fprint(bw, ", signature NOT checked")
			}
			fmt.Fprintln(bw)
		} else {
			fmt.Fprintln(bw, "  not installed by ccmirror (no trusted install record)")
		}
		if v.Error != "" {
			fmt.Fprintf(bw, "  error: %s\n", v.Error)
		}
		counts := map[string]int{}
		for _, b := range v.Blobs {
			counts[b.State]++
			if b.State != BlobOK {
				fmt.Fprintf(bw, "  blob %s: %s\n", b.Name, b.State)
			}
		}
		fmt.Fprintf(bw, "  blobs: %d ok, %d missing, %d mismatch, %d unknown hash\n", counts[BlobOK], counts[BlobMissing], counts[BlobMismatch], counts[BlobUnknown])
		if v.ChangedCount > 0 {
			fmt.Fprintf(bw, "  %d files differ from what was installed, e.g.:\n", v.ChangedCount)
			for _, c := range v.Changed {
				fmt.Fprintf(bw, "    %s: %s\n", c.Path, c.State)
			}
		}
		if v.OwnerProblemCount > 0 {
			fmt.Fprintf(bw, "  %d paths not owned by %s, e.g.:\n", v.OwnerProblemCount, v.Owner)
			for _, p := range v.OwnerProblems {
				fmt.Fprintf(bw, "    %s (%d:%d)\n", p.Path, p.UID, p.GID)
			}
		}
	}
	if r.InstallRunning != "" {
		fmt.Fprintf(bw, "an install is running: %s\n", r.InstallRunning)
	}
	for _, d := range r.Interrupted {
		fmt.Fprintf(bw, "interrupted install at %s: the next install undoes its partial changes\n", d)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(bw, "warning: %s\n", w)
	}
	return bw.Flush()
}
