package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
)

// BundleOptions says how to read a bundle.
type BundleOptions struct {
	// Name names the bundle in the report and in errors ("slurm-4.0.9.tar").
	Name string
	// Allowed, when set, is checked against the bundle's signature before
	// anything is scanned: an unsigned or untrusted bundle fails (wrapping
	// manifest.ErrVerify). Nil: the signature is not checked and the
	// report says the bundle is unverified (the hashes are still checked
	// while reading).
	Allowed *trust.AllowedSigners
	// Now is the time signature validity is checked at; nil: time.Now.
	Now    func() time.Time
	Limits Limits
}

// ScanBundle reads a whole bundle once with manifest's verifying reader and
// scans every project version it carries: the node-side files of its
// source archive (the GitHub tag archive, top folder stripped) and the
// scripts inside each carried blob archive. A jetpack download of a blob
// the bundle carries is satisfied; one of a blob it does not carry is not,
// also when the manifest lists it as required (held by the server: scan
// the staging tree with ScanRoot after install to confirm). Damage to the
// bundle (hash, order, a corrupt source archive) fails with an error
// wrapping manifest.ErrVerify; damage inside a blob archive is a note.
func ScanBundle(ctx context.Context, r io.Reader, o BundleOptions) (*Report, error) {
	name := o.Name
	if name == "" {
		name = "bundle"
	}
	rd, err := manifest.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	in := Input{Name: name}
	switch sig := rd.Signature(); {
	case o.Allowed != nil && sig == nil:
		return nil, fmt.Errorf("%s: bundle is unsigned (no %s), but --allowed-signers asks for a signature: %w", name, manifest.SignatureName, manifest.ErrVerify)
	case o.Allowed != nil:
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		id, err := o.Allowed.Verify(rd.Sums(), sig, manifest.Namespace, now())
		if err != nil {
			if !errors.Is(err, manifest.ErrVerify) {
				err = fmt.Errorf("%w: %w", manifest.ErrVerify, err)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		in.Trust = fmt.Sprintf("signature checked: good signature by %s (%s)", id.Principal, id.Fingerprint)
	case sig == nil:
		in.Trust = "UNVERIFIED: the bundle is unsigned; hashes checked while reading"
	default:
		in.Trust = "UNVERIFIED: signature not checked (pass --allowed-signers FILE); hashes checked while reading"
	}

	m := rd.Manifest()
	lim := o.Limits.orDefault()
	type blobKey struct{ project, blob string }
	sources := map[string]int{}      // source path -> project index
	blobAt := map[string]blobKey{}   // blob path -> project and blob name
	carried := map[string][]string{} // project name -> carried blob names
	for i, p := range m.Projects {
		sources[p.Source.Path] = i
		for _, b := range p.Blobs {
			blobAt[b.Path] = blobKey{p.Name, b.Name}
			carried[p.Name] = append(carried[p.Name], b.Name)
		}
	}
	trees := make([]*Project, len(m.Projects))
	blobs := map[blobKey]*ArchiveScan{}
	for {
		pl, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if i, ok := sources[pl.File.Path]; ok {
			p := m.Projects[i]
			t, err := ScanTree(ctx, p.Name, p.Version, TagArchive(pl), lim)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, pl.File.Path, err)
			}
			trees[i] = t
			continue
		}
		if k, ok := blobAt[pl.File.Path]; ok && IsArchive(k.blob) {
			as, err := ScanArchive(ctx, k.blob, pl, pl.File.Size, lim)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, pl.File.Path, err)
			}
			blobs[k] = as
		}
	}

	rep := &Report{Inputs: []Input{in}}
	held := Carried(carried)
	for i, p := range m.Projects {
		t := trees[i]
		if t == nil {
			return nil, fmt.Errorf("%s: %s was not read: %w", name, p.Source.Path, manifest.ErrVerify)
		}
		var archives []*ArchiveScan
		for _, b := range p.Blobs {
			if as := blobs[blobKey{p.Name, b.Name}]; as != nil {
				archives = append(archives, as)
			}
		}
		var required []string
		for _, b := range p.Required {
			required = append(required, b.Name)
		}
		out := Join(t, archives, required, held, lim)
		out.From = name
		rep.Projects = append(rep.Projects, out)
	}
	return rep, nil
}

// Join makes one project version's scan from the scan of its source tree
// (ScanTree) and those of the blob archives a bundle carries for it
// (ScanArchive): findings and notes merged within lim, blob findings
// resolved against h, sorted. required names the blobs the bundle leaves
// to the server (manifest Project.Required): their scripts are not
// scanned, which makes the scan incomplete, and a jetpack download of one
// says to confirm after install. ScanBundle builds every project with it;
// fetch does too, from the files it just bundled.
func Join(tree *Project, archives []*ArchiveScan, required []string, h Holder, lim Limits) Project {
	c := newCollector(lim)
	c.merge(tree.Findings, tree.Notes, tree.Incomplete)
	for _, as := range archives {
		c.merge(as.Findings, as.Notes, as.Incomplete)
	}
	req := map[string]bool{}
	for _, b := range required {
		req[b] = true
		if IsArchive(b) {
			c.cut(fmt.Sprintf("blobs/%s: not carried (the server is expected to hold it): its scripts were not scanned", b))
		}
	}
	out := Project{Name: tree.Name, Version: tree.Version, Findings: c.findings, Dependencies: tree.Dependencies,
		Notes: c.notes, Incomplete: c.incomplete, From: tree.From}
	Resolve(&out, h)
	for j := range out.Findings {
		f := &out.Findings[j]
		if f.Kind == KindBlob && !f.Satisfied && req[f.Target] && (f.blobProject == "" || f.blobProject == out.Name) {
			f.Detail = "not carried: the bundle expects the server to hold this blob already; after install, confirm with ccmirror scan --root"
		}
	}
	sortFindings(out.Findings)
	return out
}

// Carried is a Holder of the blobs a bundle carries: blob names by
// project name.
type Carried map[string][]string

// Blobs lists the blobs carried for project.
func (b Carried) Blobs(project string) ([]string, string) {
	return b[project], "carried by the bundle"
}
