package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"
	"github.com/ccmirror/ccmirror/scan/scantest"
)

// scanBundleFile writes a bundle of ps and scans it.
func scanBundleFile(t *testing.T, o BundleOptions, signer manifest.Signer, ps ...*scantest.Project) (*Report, error) {
	t.Helper()
	b := filepath.Join(t.TempDir(), "b.tar")
	scantest.WriteBundle(t, b, signer, ps...)
	f, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ScanBundle(context.Background(), f, o)
}

// find returns the finding of p with kind and target, failing when there
// is not exactly one.
func find(t *testing.T, p *Project, kind, target string) Finding {
	t.Helper()
	var got []Finding
	for _, f := range p.Findings {
		if f.Kind == kind && f.Target == target {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%s %s: %d findings %s %q, want 1; all: %+v", p.Name, p.Version, len(got), kind, target, p.Findings)
	}
	return got[0]
}

func project(t *testing.T, r *Report, name string) *Project {
	t.Helper()
	for i := range r.Projects {
		if r.Projects[i].Name == name {
			return &r.Projects[i]
		}
	}
	t.Fatalf("no project %s in %+v", name, r.Projects)
	return nil
}

// TestScanBundleSlurm4 scans a slurm 4-shaped bundle and checks what an
// admin must learn before crossing the gap.
func TestScanBundleSlurm4(t *testing.T) {
	rep, err := scanBundleFile(t, BundleOptions{Name: "slurm-4.0.9.tar"}, nil, scantest.Slurm4(), scantest.Monitoring())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Inputs) != 1 || !strings.Contains(rep.Inputs[0].Trust, "UNVERIFIED") {
		t.Errorf("inputs %+v: want the bundle called unverified", rep.Inputs)
	}
	s := project(t, rep, "slurm")
	pkg := "blobs/azure-slurm-install-pkg-4.0.9.tar.gz!azure-slurm-install/"
	checks := []struct {
		kind, target, file string
		line               int
		spec               string
		satisfied          bool
		detail             string
	}{
		{KindBlob, "azure-slurm-dashboards-4.0.9.tar.gz", "specs/scheduler/cluster-init/scripts/10-install_azslurm_exporter.sh", 5, "scheduler", false, "jetpack download fails at boot"},
		{KindBlob, "azure-slurm-install-pkg-${SLURM_PROJECT_VERSION}.tar.gz", "specs/scheduler/cluster-init/scripts/00-install.sh", 7, "scheduler", true, "matches blob azure-slurm-install-pkg-4.0.9.tar.gz"},
		{KindBlob, "azure-slurm-install-pkg-4.0.9.tar.gz", "specs/execute/cluster-init/scripts/00-install-execute.sh", 3, "execute", true, "carried by the bundle"},
		{KindURL, "https://packages.microsoft.com/yumrepos/slurm-el8", pkg + "slurmel8.repo", 3, "", false, "yum/dnf repository"},
		{KindURL, "https://packages.microsoft.com/yumrepos/slurm-el9", pkg + "slurmel9.repo", 3, "", false, "yum/dnf repository"},
		{KindURL, "https://packages.microsoft.com/config/rhel/$OS_MAJOR/packages-microsoft-prod.rpm", pkg + "rhel.sh", 16, "", false, "curl"},
		{KindURL, "https://packages.microsoft.com/repos/slurm-ubuntu-jammy/", pkg + "ubuntu.sh", 5, "", false, "deb line"},
		{KindPackage, "epel-release", pkg + "rhel.sh", 20, "", false, "dnf install"},
		{KindPackage, "powertools", pkg + "rhel.sh", 9, "", false, "enables repository powertools"},
		{KindPackage, "crb", pkg + "rhel.sh", 12, "", false, "enables repository crb"},
		{KindPackage, "slurm-${SLURM_VERSION}", pkg + "rhel.sh", 21, "", false, "dnf install"},
		{KindPackage, "nfs-utils", pkg + "install.py", 10, "", false, "dnf install"},
		{KindPip, "wheel", pkg + "install.sh", 7, "", false, "PyPI"},
		{KindPip, "parallel-ssh", pkg + "install.sh", 8, "", false, "PyPI"},
		{KindPip, "packages/*", pkg + "install.sh", 9, "", true, "no network"},
		{KindPip, "azure-slurm", "blobs/azure-slurm-pkg-4.0.9.tar.gz!azure-slurm/install.sh", 4, "", true, "--no-index"},
	}
	for _, c := range checks {
		f := find(t, s, c.kind, c.target)
		if f.File != c.file || f.Line != c.line || f.Spec != c.spec || f.Satisfied != c.satisfied || !strings.Contains(f.Detail, c.detail) {
			t.Errorf("%s %s: got %s:%d spec %q satisfied %v %q, want %s:%d spec %q satisfied %v, detail with %q",
				c.kind, c.target, f.File, f.Line, f.Spec, f.Satisfied, f.Detail, c.file, c.line, c.spec, c.satisfied, c.detail)
		}
	}
	for _, f := range s.Findings {
		for _, commented := range []string{"old", "slurm-devel", "commented", "docstring"} {
			if strings.Contains(f.Target, commented) {
				t.Errorf("a comment counted: %+v", f)
			}
		}
	}
	wantDeps := []Dependency{{"healthagent", "default", ""}, {"monitoring", "default", "1.0.3"}}
	if !reflect.DeepEqual(s.Dependencies, wantDeps) {
		t.Errorf("dependencies %+v, want %+v", s.Dependencies, wantDeps)
	}
	if got, want := Summary(s, "ccmirror scan slurm-4.0.9.tar"), "slurm 4.0.9: nodes will reach 1 host, PyPI and the OS package repositories at boot, 1 blob missing — ccmirror scan slurm-4.0.9.tar"; got != want {
		t.Errorf("summary\n%s\nwant\n%s", got, want)
	}
	if s.Incomplete {
		t.Errorf("slurm scan incomplete: %v", s.Notes)
	}
	if !hasNote(s, "specs/default/cluster-init/files/hosts: symbolic link, not followed") || !hasNote(s, "1 link inside, not followed") {
		t.Errorf("links not reported: %v", s.Notes)
	}

	m := project(t, rep, "monitoring")
	f := find(t, m, KindContainer, "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.7-3.5.0-ubuntu22.04")
	if f.File != "blobs/monitoring-exporters-1.0.3.zip!exporters/install.sh" || f.Line != 11 || f.Satisfied {
		t.Errorf("dcgm exporter: %+v", f)
	}
	for _, u := range []string{
		"https://github.com/prometheus/prometheus/releases/download/v${PROM_VERSION}/prometheus-${PROM_VERSION}.linux-amd64.tar.gz",
		"https://github.com/prometheus/node_exporter/releases/download/v$NODE_EXPORTER_VERSION/node_exporter-$NODE_EXPORTER_VERSION.linux-amd64.tar.gz",
		"https://github.com/mikefarah/yq/releases/download/v4.44.2/yq_linux_amd64",
	} {
		if f := find(t, m, KindURL, u); !strings.Contains(f.Detail, "wget") {
			t.Errorf("%s: %q", u, f.Detail)
		}
	}
	if got := Summary(m, ""); got != "monitoring 1.0.3: nodes will reach 2 hosts at boot" {
		t.Errorf("monitoring summary %q", got)
	}
	// slurm's template names monitoring, which is in this bundle, and
	// healthagent, which is not.
	if v := rep.Verdict(); !strings.HasPrefix(v, "verdict: NOT READY: ") || !strings.Contains(v, "templates also include healthagent (not scanned here)") {
		t.Errorf("verdict %q", v)
	}
	if rep.Unsatisfied() == 0 {
		t.Error("Unsatisfied() = 0")
	}
}

func hasNote(p *Project, s string) bool {
	for _, n := range p.Notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// TestScanBundleOthers pins the healthagent and pbspro patterns: a local
// sdist whose dependencies come from PyPI, a local rpm, pip install
// virtualenv, git clone, chef jetpack_download.
func TestScanBundleOthers(t *testing.T) {
	rep, err := scanBundleFile(t, BundleOptions{}, nil, scantest.Healthagent(), scantest.PBSPro())
	if err != nil {
		t.Fatal(err)
	}
	h := project(t, rep, "healthagent")
	if f := find(t, h, KindPip, "/tmp/healthagent-1.0.2.tar.gz"); !f.Satisfied || !strings.Contains(f.Detail, "dependencies may still come from PyPI") {
		t.Errorf("sdist: %+v", f)
	}
	if got := Summary(h, ""); got != "healthagent 1.0.2: nodes reach nothing outside the bundle at boot, but 1 local install may fetch dependencies from package repositories or PyPI" {
		t.Errorf("healthagent summary %q", got)
	}
	p := project(t, rep, "pbspro")
	if f := find(t, p, KindPackage, "/tmp/openpbs-server-22.05.11-0.x86_64.rpm"); !f.Satisfied || !strings.Contains(f.Detail, "dependencies may still come from the package repositories") {
		t.Errorf("local rpm: %+v", f)
	}
	if f := find(t, p, KindPip, "virtualenv"); f.Satisfied {
		t.Errorf("virtualenv: %+v", f)
	}
	if f := find(t, p, KindGit, "https://github.com/Azure/cyclecloud-scalelib.git"); f.Satisfied || f.Line != 4 {
		t.Errorf("git clone: %+v", f)
	}
	if f := find(t, p, KindBlob, "openpbs-server-22.05.11-0.x86_64.rpm"); !f.Satisfied || f.Line != 8 {
		t.Errorf("chef jetpack_download: %+v", f)
	}
	if f := find(t, p, KindBlob, "{pbs_rpm}"); f.Satisfied || !strings.Contains(f.Detail, "computed at run time") {
		t.Errorf("chef jetpack_download of a variable: %+v", f)
	}
	for _, pk := range []string{"postgresql-server", "hwloc-libs"} {
		if f := find(t, p, KindPackage, pk); f.Satisfied {
			t.Errorf("%s: %+v", pk, f)
		}
	}
	for _, f := range p.Findings {
		if f.Kind == KindURL {
			t.Errorf("the git clone URL is also a url finding: %+v", f)
		}
	}
}

// TestScanBundleJSON pins the JSON contract, field by field.
func TestScanBundleJSON(t *testing.T) {
	rep, err := scanBundleFile(t, BundleOptions{}, nil, scantest.Slurm4(), scantest.Healthagent())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string][]map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != 1 || len(doc["projects"]) != 2 {
		t.Fatalf("top level: %s", buf.String())
	}
	keysOf := func(m map[string]json.RawMessage) []string {
		var k []string
		for x := range m {
			k = append(k, x)
		}
		sort.Strings(k)
		return k
	}
	for _, p := range doc["projects"] {
		if got := keysOf(p); !reflect.DeepEqual(got, []string{"dependencies", "findings", "name", "version"}) {
			t.Errorf("project keys %v", got)
		}
		var fs, ds []map[string]json.RawMessage
		json.Unmarshal(p["findings"], &fs)
		json.Unmarshal(p["dependencies"], &ds)
		if string(p["dependencies"]) == "null" || string(p["findings"]) == "null" {
			t.Errorf("null list in %s", p["name"])
		}
		for _, f := range fs {
			if got := keysOf(f); !reflect.DeepEqual(got, []string{"detail", "file", "kind", "line", "satisfied", "spec", "target"}) {
				t.Errorf("finding keys %v", got)
			}
		}
		for _, d := range ds {
			if got := keysOf(d); !reflect.DeepEqual(got, []string{"project", "spec", "version"}) {
				t.Errorf("dependency keys %v", got)
			}
		}
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	f := find(t, &back.Projects[0], KindBlob, "azure-slurm-dashboards-4.0.9.tar.gz")
	if f.Line != 5 || f.Satisfied || f.Spec != "scheduler" {
		t.Errorf("round trip: %+v", f)
	}
}

// TestScanBundleSignature: with allowed signers the signature is checked
// first and failures are verification errors; without, the report says so.
func TestScanBundleSignature(t *testing.T) {
	k := trusttest.NewKey(t, "ops@example.com")
	allowed, err := trust.ParseAllowedSigners(strings.NewReader(k.AllowedLine), "allowed_signers")
	if err != nil {
		t.Fatal(err)
	}
	other := trusttest.NewKey(t, "mallory@example.com")

	rep, err := scanBundleFile(t, BundleOptions{Name: "b", Allowed: allowed}, k.Signer, scantest.Healthagent())
	if err != nil {
		t.Fatal(err)
	}
	if tr := rep.Inputs[0].Trust; !strings.Contains(tr, "signature checked: good signature by ops@example.com") {
		t.Errorf("trust %q", tr)
	}
	if rep, err := scanBundleFile(t, BundleOptions{Name: "b"}, k.Signer, scantest.Healthagent()); err != nil || !strings.Contains(rep.Inputs[0].Trust, "signature not checked") {
		t.Errorf("signed bundle without allowed signers: %v %+v", err, rep)
	}
	for name, signer := range map[string]manifest.Signer{"unsigned": nil, "untrusted key": other.Signer} {
		_, err := scanBundleFile(t, BundleOptions{Name: "b", Allowed: allowed}, signer, scantest.Healthagent())
		if !errors.Is(err, manifest.ErrVerify) {
			t.Errorf("%s: err %v, want ErrVerify", name, err)
		}
	}
}

// TestScanBundleRequired: a required blob the bundle does not carry is
// unsatisfied in the bundle and satisfied once staged.
func TestScanBundleRequired(t *testing.T) {
	p := scantest.Slurm4()
	p.Required = []string{"azure-slurm-dashboards-4.0.9.tar.gz"}
	rep, err := scanBundleFile(t, BundleOptions{}, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	f := find(t, &rep.Projects[0], KindBlob, "azure-slurm-dashboards-4.0.9.tar.gz")
	if f.Satisfied || !strings.Contains(f.Detail, "expects the server to hold this blob") {
		t.Errorf("required blob in the bundle: %+v", f)
	}
	if !rep.Projects[0].Incomplete || !hasNote(&rep.Projects[0], "not carried (the server is expected to hold it)") {
		t.Errorf("notes %v", rep.Projects[0].Notes)
	}
	root := t.TempDir()
	scantest.Stage(t, root, p)
	rep, err = ScanRoot(context.Background(), root, RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f := find(t, &rep.Projects[0], KindBlob, "azure-slurm-dashboards-4.0.9.tar.gz"); !f.Satisfied || !strings.Contains(f.Detail, "staged in projects/slurm/blobs") {
		t.Errorf("required blob once staged: %+v", f)
	}
}

// TestScanBundleDamage: a damaged bundle or source archive fails as a
// verification error; a damaged blob archive is a note.
func TestScanBundleDamage(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	scantest.WriteBundle(t, good, nil, scantest.Healthagent())
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), b...)
	i := bytes.Index(flipped, []byte("projects/healthagent/1.0.2/source.tar.gz"))
	flipped[i+1024] ^= 0xff // inside the source archive's data
	if _, err := ScanBundle(context.Background(), bytes.NewReader(flipped), BundleOptions{}); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("flipped byte: %v, want ErrVerify", err)
	}
	if _, err := ScanBundle(context.Background(), bytes.NewReader(b[:len(b)/2]), BundleOptions{}); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("truncated: %v, want ErrVerify", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScanBundle(ctx, bytes.NewReader(b), BundleOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}

	notGzip := scantest.Healthagent()
	notGzip.Archive = []byte("not a gzip tar")
	if _, err := scanBundleFile(t, BundleOptions{}, nil, notGzip); !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "source.tar.gz") {
		t.Errorf("source archive that is not gzip: %v, want ErrVerify naming it", err)
	}

	bad := scantest.Healthagent()
	bad.Blobs["healthagent-1.0.2.tar.gz"] = []byte("this is not gzip")
	rep, err := scanBundleFile(t, BundleOptions{}, nil, bad)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Projects[0].Incomplete || !hasNote(&rep.Projects[0], "blobs/healthagent-1.0.2.tar.gz: not a readable tgz archive") {
		t.Errorf("notes %v", rep.Projects[0].Notes)
	}
	if !strings.Contains(Summary(&rep.Projects[0], ""), "but the scan is incomplete") || !strings.HasPrefix(rep.Verdict(), "verdict: UNKNOWN") {
		t.Errorf("summary %q", Summary(&rep.Projects[0], ""))
	}
}
