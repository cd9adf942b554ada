package scan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/scan/scantest"
)

// TestScanRoot scans a staged tree that holds what install stages, plus
// the hostile things a staging tree may hold: links, a FIFO, a device, a
// blob that is a link.
func TestScanRoot(t *testing.T) {
	root := t.TempDir()
	scantest.Stage(t, root, scantest.Slurm4(), scantest.PBSPro())
	pdir := filepath.Join(root, "work", "staging", "projects")
	scripts := filepath.Join(pdir, "slurm", "4.0.9", "scheduler", "cluster-init", "scripts")
	secret := filepath.Join(t.TempDir(), "secret.sh")
	if err := os.WriteFile(secret, []byte("pip install leaked-through-a-link\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(secret, filepath.Join(scripts, "20-link.sh")))
	must(os.Symlink(filepath.Dir(secret), filepath.Join(pdir, "slurm", "4.0.9", "execute", "cluster-init", "files")))
	must(syscall.Mkfifo(filepath.Join(scripts, "30-fifo.sh"), 0o644))
	// A blob that is a link is not counted as staged.
	blobs := filepath.Join(pdir, "slurm", "blobs")
	must(os.Rename(filepath.Join(blobs, "azure_slurm_exporter-0.2.0.tar.gz"), filepath.Join(root, "exporter.tgz")))
	must(os.Symlink(filepath.Join(root, "exporter.tgz"), filepath.Join(blobs, "azure_slurm_exporter-0.2.0.tar.gz")))

	// A broken project.ini is reported without quoting it.
	must(os.WriteFile(filepath.Join(pdir, "pbspro", "2.0.25", "project.ini"), []byte("[project]\nname = pbspro\n[blobs]\nFiles = /etc/SECRET-CONTENT\n"), 0o644))

	// A blob that is a FIFO is neither staged nor opened (that would block).
	must(os.Remove(filepath.Join(blobs, "azure-slurm-pkg-4.0.9.tar.gz")))
	must(syscall.Mkfifo(filepath.Join(blobs, "azure-slurm-pkg-4.0.9.tar.gz"), 0o644))

	rep, err := ScanRoot(context.Background(), root, RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Projects) != 2 || rep.Projects[0].Name != "pbspro" || rep.Projects[1].Name != "slurm" {
		t.Fatalf("projects %+v", rep.Projects)
	}
	if pb := &rep.Projects[0]; !hasNote(pb, "pbspro/2.0.25/project.ini: not a valid project.ini") || strings.Contains(strings.Join(pb.Notes, " "), "SECRET") {
		t.Errorf("pbspro notes %v", pb.Notes)
	}
	s := &rep.Projects[1]
	// Built layout maps back to source paths.
	if f := find(t, s, KindBlob, "azure-slurm-dashboards-4.0.9.tar.gz"); f.File != "specs/scheduler/cluster-init/scripts/10-install_azslurm_exporter.sh" || f.Spec != "scheduler" || f.Satisfied {
		t.Errorf("dashboards: %+v", f)
	}
	if f := find(t, s, KindBlob, "azure_slurm_exporter-0.2.0.tar.gz"); f.Satisfied {
		t.Errorf("a blob that is a symbolic link counted as staged: %+v", f)
	}
	if f := find(t, s, KindURL, "https://packages.microsoft.com/yumrepos/slurm-el9"); f.File != "blobs/azure-slurm-install-pkg-4.0.9.tar.gz!azure-slurm-install/slurmel9.repo" {
		t.Errorf("staged blob archive: %+v", f)
	}
	for _, f := range s.Findings {
		if strings.Contains(f.Target, "leaked") {
			t.Errorf("followed a link: %+v", f)
		}
	}
	for _, n := range []string{
		"specs/scheduler/cluster-init/scripts/20-link.sh: symbolic link, not followed",
		"specs/scheduler/cluster-init/scripts/30-fifo.sh: FIFO, not followed",
		"specs/execute/cluster-init/files: symbolic link, not followed",
		"slurm/blobs/azure_slurm_exporter-0.2.0.tar.gz: symbolic link, not counted as staged",
		"slurm/blobs/azure-slurm-pkg-4.0.9.tar.gz: FIFO, not counted as staged",
	} {
		if !hasNote(s, n) {
			t.Errorf("no note %q in %v", n, s.Notes)
		}
	}
	if len(s.Dependencies) != 0 {
		t.Errorf("staged trees hold no templates, got dependencies %+v", s.Dependencies)
	}

	if f := find(t, s, KindBlob, "azure-slurm-pkg-${SLURM_PROJECT_VERSION}.tar.gz"); f.Satisfied {
		t.Errorf("a blob that is a FIFO counted as staged: %+v", f)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScanRoot(ctx, root, RootOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}

	// Filters.
	rep, err = ScanRoot(context.Background(), root, RootOptions{Filters: []string{"slurm@4.0.9"}})
	if err != nil || len(rep.Projects) != 1 || rep.Projects[0].Name != "slurm" {
		t.Errorf("filter slurm@4.0.9: %v %+v", err, rep)
	}
	for _, f := range []string{"slurm@9.9.9", "nosuch", "../etc"} {
		if _, err := ScanRoot(context.Background(), root, RootOptions{Filters: []string{f}}); !errors.Is(err, errclass.ErrUsage) {
			t.Errorf("filter %s: %v, want ErrUsage", f, err)
		}
	}
	if _, err := ScanRoot(context.Background(), filepath.Join(root, "nope"), RootOptions{}); !errors.Is(err, errclass.ErrUsage) {
		t.Errorf("missing root: %v, want ErrUsage", err)
	}
}

// TestScanRootDevice: a device node in a spec folder is skipped, never
// opened for reading (needs root to create one).
func TestScanRootDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a device node needs root")
	}
	root := t.TempDir()
	scantest.Stage(t, root, scantest.Healthagent())
	dev := filepath.Join(root, "work", "staging", "projects", "healthagent", "1.0.2", "default", "cluster-init", "scripts", "zero.sh")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o644, 1<<8|5); err != nil { // /dev/zero: 1,5
		t.Fatal(err)
	}
	rep, err := ScanRoot(context.Background(), root, RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasNote(&rep.Projects[0], "scripts/zero.sh: device, not followed") {
		t.Errorf("notes %v", rep.Projects[0].Notes)
	}
}
