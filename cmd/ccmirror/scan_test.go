package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/scan"
	"github.com/ccmirror/ccmirror/scan/scantest"
)

// TestScanBundleCLI scans a signed slurm 4-shaped bundle (with monitoring)
// in text and JSON, checks the signature, and fails under --strict.
func TestScanBundleCLI(t *testing.T) {
	k := trusttest.NewKey(t, "ops@example.com")
	allowed := k.AllowedSignersFile(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "slurm-4.0.9.tar")
	scantest.WriteBundle(t, bundle, k.Signer, scantest.Slurm4(), scantest.Monitoring())

	out := mustRunCLI(t, "scan", "--allowed-signers", allowed, bundle)
	for _, want := range []string{
		bundle + ": signature checked: good signature by ops@example.com",
		"slurm 4.0.9 (" + bundle + ")",
		"  blob: 5, 1 unsatisfied",
		"specs/scheduler/cluster-init/scripts/10-install_azslurm_exporter.sh:5",
		"blobs/azure-slurm-install-pkg-4.0.9.tar.gz!azure-slurm-install/slurmel8.repo:3",
		"depends on (cluster templates): healthagent:default, monitoring:default:1.0.3",
		"  hosts reached at boot: packages.microsoft.com, pypi.org\n",
		"  hosts reached at boot: github.com, nvcr.io\n",
		"blobs/monitoring-exporters-1.0.3.zip!exporters/install.sh:11",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "verdict: NOT READY: nodes will reach 3 hosts, PyPI and the OS package repositories at boot") {
		t.Errorf("last line %q", last)
	}

	code, stdout, stderr := runCLI(t, "scan", "--json", bundle)
	if code != exitOK {
		t.Fatalf("scan --json: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "UNVERIFIED: signature not checked") {
		t.Errorf("scan --json without --allowed-signers: stderr %q does not say the bundle is unverified", stderr)
	}
	var rep scan.Report
	decodeJSON(t, stdout, &rep)
	if len(rep.Projects) != 2 || rep.Projects[0].Name != "slurm" || rep.Projects[1].Name != "monitoring" {
		t.Fatalf("projects %+v", rep.Projects)
	}
	missing := 0
	for _, f := range rep.Projects[0].Findings {
		if f.Kind == scan.KindBlob && !f.Satisfied {
			missing++
			if f.Target != "azure-slurm-dashboards-4.0.9.tar.gz" || !strings.Contains(f.Detail, "jetpack download fails at boot") {
				t.Errorf("missing blob %+v", f)
			}
		}
	}
	if missing != 1 {
		t.Errorf("%d missing blobs, want 1", missing)
	}

	code, _, stderr = runCLI(t, "scan", "--strict", bundle)
	if code != exitFailure || !strings.Contains(stderr, "unsatisfied (--strict)") {
		t.Errorf("scan --strict: exit %d, stderr %q; want 1 and the count", code, stderr)
	}

	// A bundle whose nodes need nothing passes --strict.
	clean := filepath.Join(dir, "clean.tar")
	p := scantest.Healthagent()
	p.Source["specs/default/cluster-init/scripts/00-install.sh"] = []byte("#!/bin/bash\njetpack download healthagent-1.0.2.tar.gz /tmp\npip install --no-index --find-links /tmp healthagent\n")
	scantest.WriteBundle(t, clean, nil, p)
	if out := mustRunCLI(t, "scan", "--strict", clean); !strings.Contains(out, "verdict: READY") {
		t.Errorf("clean bundle: %s", out)
	}
}

// TestScanExitCodes: bad input is one line with the documented code.
func TestScanExitCodes(t *testing.T) {
	k := trusttest.NewKey(t, "ops@example.com")
	allowed := k.AllowedSignersFile(t)
	other := trusttest.NewKey(t, "mallory@example.com").AllowedSignersFile(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	scantest.WriteBundle(t, good, k.Signer, scantest.Healthagent())
	unsigned := filepath.Join(dir, "unsigned.tar")
	scantest.WriteBundle(t, unsigned, nil, scantest.Healthagent())
	tampered := filepath.Join(dir, "tampered.tar")
	b, _ := os.ReadFile(good)
	b[len(b)-2000] ^= 1
	os.WriteFile(tampered, b, 0o644)
	root := t.TempDir()
	scantest.Stage(t, root, scantest.Healthagent())

	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no bundle", []string{"scan"}, exitUsage, "name at least one BUNDLE, or --root DIR"},
		{"tampered", []string{"scan", tampered}, exitVerify, "tampered.tar: "},
		{"unsigned with allowed signers", []string{"scan", "--allowed-signers", allowed, unsigned}, exitVerify, "unsigned"},
		{"untrusted key", []string{"scan", "--allowed-signers", other, good}, exitVerify, "not in allowed_signers"},
		{"missing bundle", []string{"scan", filepath.Join(dir, "nope.tar")}, exitFailure, "nope.tar"},
		{"folder as bundle", []string{"scan", root}, exitUsage, "--root"},
		{"missing root", []string{"scan", "--root", filepath.Join(dir, "typo")}, exitUsage, "no staging tree at " + filepath.Join(dir, "typo")},
		{"unknown project", []string{"scan", "--root", root, "slurm"}, exitUsage, "nothing staged under"},
		{"bad filter", []string{"scan", "--root", root, "a b"}, exitUsage, "not NAME or NAME@VERSION"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Errorf("printed a report on failure: %s", stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ccmirror: ") || !strings.Contains(lines[0], tc.msg) {
				t.Errorf("stderr %q, want one 'ccmirror: …' line mentioning %q", stderr, tc.msg)
			}
		})
	}
}

// TestScanAfterInstall installs the slurm 4-shaped bundle with ccmirror
// and scans the staging tree install wrote: the staged blobs satisfy the
// jetpack downloads, the one the release lacks is still missing.
func TestScanAfterInstall(t *testing.T) {
	k := trusttest.NewKey(t, "ops@example.com")
	allowed := k.AllowedSignersFile(t)
	owner, _, _ := stagingOwner(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "slurm-4.0.9.tar")
	scantest.WriteBundle(t, bundle, k.Signer, scantest.Slurm4())
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	mustRunCLI(t, "install", "--allowed-signers", allowed, "--root", root, "--owner", owner, "--builder", "native", bundle)

	var rep scan.Report
	decodeJSON(t, mustRunCLI(t, "scan", "--root", root, "--json", "slurm@4.0.9"), &rep)
	if len(rep.Projects) != 1 || rep.Projects[0].Version != "4.0.9" {
		t.Fatalf("projects %+v", rep.Projects)
	}
	got := map[string]scan.Finding{}
	for _, f := range rep.Projects[0].Findings {
		if f.Kind == scan.KindBlob {
			got[f.Target] = f
		}
	}
	for name, sat := range map[string]bool{
		"azure-slurm-install-pkg-4.0.9.tar.gz":                    true,
		"azure-slurm-install-pkg-${SLURM_PROJECT_VERSION}.tar.gz": true,
		"azure_slurm_exporter-0.2.0.tar.gz":                       true,
		"azure-slurm-dashboards-4.0.9.tar.gz":                     false,
	} {
		f, ok := got[name]
		if !ok || f.Satisfied != sat {
			t.Errorf("staged %s: %+v, want satisfied %v", name, f, sat)
		}
	}
	out := mustRunCLI(t, "scan", "--root", root)
	if !strings.Contains(out, "blobs/azure-slurm-install-pkg-4.0.9.tar.gz!azure-slurm-install/rhel.sh:20") {
		t.Errorf("the staged install package was not scanned:\n%s", out)
	}
}

// TestScanFetchedBundle scans what fetch wrote from the fake GitHub: the
// verb reads real fetch output (its sources carry filler, so the blobs are
// not archives it can read: notes, exit 0).
func TestScanFetchedBundle(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	bundle := filepath.Join(t.TempDir(), "slurm-4.0.9.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--sign-key", key, "--cache", t.TempDir(), "-o", bundle, "slurm@4.0.9")
	code, stdout, stderr := runCLI(t, "scan", "--json", "--allowed-signers", allowed, bundle)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep scan.Report
	decodeJSON(t, stdout, &rep)
	if len(rep.Projects) != 1 || rep.Projects[0].Name != "slurm" || rep.Projects[0].Version != "4.0.9" || rep.Projects[0].Findings == nil {
		t.Errorf("report %s", stdout)
	}
	if !strings.Contains(stderr, "signature checked: good signature by ops@example.com") {
		t.Errorf("stderr %q", stderr)
	}
}

// TestScanWithoutShell calls runScan with an options struct, no command
// line: the usage rules live there.
func TestScanWithoutShell(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	scantest.Stage(t, root, scantest.PBSPro())
	for name, o := range map[string]*scanOptions{
		"nothing":              {},
		"root, unknown filter": {Root: root, Args: []string{"slurm@1.0"}},
	} {
		e, out, _ := testEnv()
		if err := runScan(ctx, e, o); !errors.Is(err, errclass.ErrUsage) || out.Len() != 0 {
			t.Errorf("%s: %v, stdout %q; want a usage error and nothing printed", name, err, out)
		}
	}
	e, out, _ := testEnv()
	// CCMIRROR_ALLOWED_SIGNERS set for install does not stop a scan of the tree.
	if err := runScan(ctx, e, &scanOptions{Root: root, JSON: true, Trust: trustFlags{AllowedSigners: "/etc/ccmirror/allowed_signers"}}); err != nil {
		t.Fatal(err)
	}
	var rep scan.Report
	decodeJSON(t, out.String(), &rep)
	if len(rep.Projects) != 1 || rep.Projects[0].Name != "pbspro" {
		t.Errorf("report %s", out)
	}
	e, _, _ = testEnv()
	if err := runScan(ctx, e, &scanOptions{Root: root, Strict: true}); err == nil || errors.Is(err, errclass.ErrUsage) {
		t.Errorf("--strict over unsatisfied needs: %v, want a plain failure (exit 1)", err)
	}
}
