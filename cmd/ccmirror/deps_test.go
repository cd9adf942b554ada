package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/scan/scantest"
)

// scanWorld starts a fake GitHub serving githubtest.ScanWorld plus extra
// content (applied after it: extra files of the same release are added).
func scanWorld(t *testing.T, extra ...githubtest.Content) *githubtest.Server {
	t.Helper()
	content := githubtest.ScanWorld()
	for _, x := range extra {
		found := false
		for i := range content {
			if content[i].Repo == x.Repo && content[i].Tag == x.Tag {
				for k, v := range x.Files {
					content[i].Files[k] = v
				}
				found = true
			}
		}
		if !found {
			content = append(content, x)
		}
	}
	gh, err := githubtest.NewServer(githubtest.Options{Content: content})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	return gh
}

// fetchJSON is the part of fetch --json these tests read.
type fetchJSON struct {
	Manifest struct {
		Projects []struct{ Name, Version string }
	}
	LeftOut   []mirror.LeftOut `json:"left_out"`
	Readiness []readiness      `json:"readiness"`
}

func (f fetchJSON) projects() []string {
	var out []string
	for _, p := range f.Manifest.Projects {
		out = append(out, p.Name+" "+p.Version)
	}
	sort.Strings(out)
	return out
}

func (f fetchJSON) summary(name string) string {
	for _, r := range f.Readiness {
		if r.Name == name {
			return r.Summary
		}
	}
	return ""
}

// TestFetchWithDeps fetches slurm 4 from a fake GitHub whose scripts reach
// the network as the real projects do: --with-deps adds healthagent and
// monitoring (the versions its template names, else the latest) to the
// same bundle, and the readiness lines name the hosts, PyPI and the blob
// no release carries.
func TestFetchWithDeps(t *testing.T) {
	gh := scanWorld(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "slurm-4.0.9.tar")
	code, stdout, stderr := runCLI(t, "fetch", "--json", "--with-deps", "--github-url", gh.URL(), "--unsigned",
		"--cache", filepath.Join(dir, "cache"), "-o", bundle, "slurm@4.0.9")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res fetchJSON
	decodeJSON(t, stdout, &res)
	if got, want := strings.Join(res.projects(), ", "), "healthagent 1.0.2, monitoring 1.0.3, slurm 4.0.9"; got != want {
		t.Errorf("bundle holds %s, want %s", got, want)
	}
	if len(res.LeftOut) != 0 || strings.Contains(stderr, "left out") {
		t.Errorf("left out %+v, stderr %q; want nothing left out", res.LeftOut, stderr)
	}
	if len(res.Readiness) != 3 {
		t.Fatalf("readiness %+v, want one per project", res.Readiness)
	}
	hint := " — ccmirror scan " + bundle
	for name, want := range map[string]string{
		"slurm":       "slurm 4.0.9: nodes will reach 1 host, PyPI and the OS package repositories at boot, 1 blob missing" + hint,
		"monitoring":  "monitoring 1.0.3: nodes will reach 2 hosts at boot" + hint,
		"healthagent": "healthagent 1.0.2: nodes reach nothing outside the bundle at boot, but 1 local install may fetch dependencies from package repositories or PyPI" + hint,
	} {
		if got := res.summary(name); got != want {
			t.Errorf("readiness of %s:\n got %q\nwant %q", name, got, want)
		}
	}

	// The bundle holds what the readiness line says: scan agrees.
	out := mustRunCLI(t, "scan", bundle)
	for _, want := range []string{"packages.microsoft.com", "pypi.org", "azure-slurm-dashboards-4.0.9.tar.gz", "nvcr.io"} {
		if !strings.Contains(out, want) {
			t.Errorf("scan of the fetched bundle lacks %q:\n%s", want, out)
		}
	}
}

// TestFetchLeftOutDeps: without --with-deps fetch carries only what it is
// asked for and says, in one line on stderr, which dependencies it left
// out and the flag that adds them; also under --quiet and --json (where
// it is a field too). The readiness line ends the text output, and
// --quiet drops it.
func TestFetchLeftOutDeps(t *testing.T) {
	gh := scanWorld(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	const want = "warning: left out healthagent (slurm 4.0.9), monitoring@1.0.3 (slurm 4.0.9), included by the cluster templates; --with-deps adds them\n"
	for _, tc := range []struct {
		name      string
		flags     []string
		readiness bool
	}{
		{"text", nil, true},
		{"quiet", []string{"--quiet"}, false},
		{"json", []string{"--json"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := filepath.Join(dir, tc.name+".tar")
			args := append([]string{"fetch", "--github-url", gh.URL(), "--unsigned", "--cache", cache, "-o", bundle}, tc.flags...)
			code, stdout, stderr := runCLI(t, append(args, "slurm@4.0.9")...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if stderr != want {
				t.Errorf("stderr %q\nwant %q", stderr, want)
			}
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			last := lines[len(lines)-1]
			ready := strings.HasPrefix(last, "slurm 4.0.9: nodes will reach") && strings.HasSuffix(last, "— ccmirror scan "+bundle)
			if ready != tc.readiness {
				t.Errorf("last line of stdout %q: readiness line shown %v, want %v", last, ready, tc.readiness)
			}
			if tc.name == "quiet" && strings.Contains(stdout, "nodes will reach") {
				t.Errorf("--quiet printed the readiness line:\n%s", stdout)
			}
			if tc.name != "json" {
				return
			}
			var res fetchJSON
			decodeJSON(t, stdout, &res)
			if got := strings.Join(res.projects(), ", "); got != "slurm 4.0.9" {
				t.Errorf("bundle holds %s", got)
			}
			if len(res.LeftOut) != 2 || res.LeftOut[0].String() != "healthagent" || res.LeftOut[1].String() != "monitoring@1.0.3" ||
				res.LeftOut[0].By[0] != "slurm 4.0.9" || res.LeftOut[0].Reason != "" {
				t.Errorf("left_out %+v", res.LeftOut)
			}
			if len(res.Readiness) != 1 || res.Readiness[0].Unsatisfied == 0 || !strings.Contains(res.Readiness[0].Summary, "1 blob missing") {
				t.Errorf("readiness %+v", res.Readiness)
			}
		})
	}
}

// TestFetchWithDepsCycle: healthagent's template includes monitoring,
// monitoring's includes healthagent (at the version already fetched),
// slurm (reached only through monitoring) and a project no repository is
// known for. --with-deps follows them transitively, fetches each project
// version once, ends, and reports the unknown one as left out with the
// reason.
func TestFetchWithDepsCycle(t *testing.T) {
	tmpl := func(lines ...string) []byte {
		return []byte("[cluster test]\n    [[node defaults]]\n" + strings.Join(lines, "\n") + "\n")
	}
	gh := scanWorld(t,
		githubtest.Content{Repo: "cyclecloud-healthagent", Tag: "1.0.2", Files: map[string][]byte{
			"templates/healthagent.txt": tmpl("        [[[cluster-init cyclecloud/monitoring:default]]]"),
		}},
		githubtest.Content{Repo: "cyclecloud-monitoring", Tag: "1.0.3", Files: map[string][]byte{
			"templates/monitoring.txt": tmpl(
				"        [[[cluster-init cyclecloud/healthagent:default:1.0.2]]]",
				"        [[[cluster-init cyclecloud/slurm:default]]]",
				"        [[[cluster-init cyclecloud/customthing:default]]]"),
		}},
	)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "b.tar")
	code, stdout, stderr := runCLI(t, "fetch", "--json", "--with-deps", "--github-url", gh.URL(), "--unsigned",
		"--cache", filepath.Join(dir, "cache"), "-o", bundle, "healthagent@1.0.2")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res fetchJSON
	decodeJSON(t, stdout, &res)
	if got, want := strings.Join(res.projects(), ", "), "healthagent 1.0.2, monitoring 1.0.3, slurm 4.0.9"; got != want {
		t.Errorf("bundle holds %s, want %s", got, want)
	}
	if len(res.LeftOut) != 1 || res.LeftOut[0].Project != "customthing" || res.LeftOut[0].By[0] != "monitoring 1.0.3" ||
		res.LeftOut[0].Reason != "no repository known for it" {
		t.Errorf("left_out %+v, want customthing with a reason", res.LeftOut)
	}
	if !strings.Contains(stderr, "customthing (monitoring 1.0.3): no repository known for it; fetch it as OWNER/REPO[@VERSION]") || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "--with-deps adds") {
		t.Errorf("stderr %q: want one line naming customthing and why it was not added", stderr)

	}
}

// TestFetchWithDepsMissingRelease: a dependency whose release does not
// exist fails the fetch as the ref would (exit 3, no bundle), and the
// error says which project's templates include it.
func TestFetchWithDepsMissingRelease(t *testing.T) {
	gh := scanWorld(t, githubtest.Content{Repo: "cyclecloud-healthagent", Tag: "1.0.2", Files: map[string][]byte{
		"templates/healthagent.txt": []byte("[[[cluster-init cyclecloud/monitoring:default:9.9.9]]]\n"),
	}})
	dir := t.TempDir()
	bundle := filepath.Join(dir, "b.tar")
	code, _, stderr := runCLI(t, "fetch", "--with-deps", "--github-url", gh.URL(), "--unsigned",
		"--cache", filepath.Join(dir, "cache"), "-o", bundle, "healthagent@1.0.2")
	if code != exitUpstream || !strings.Contains(stderr, "9.9.9") || !strings.Contains(stderr, "included by the cluster templates of healthagent 1.0.2") {
		t.Errorf("exit %d, stderr %q; want 3 naming the release and who includes it", code, stderr)
	}
	if _, err := os.Stat(bundle); err == nil {
		t.Error("a bundle was written")
	}
}

// TestInstallReadiness: install ends with the readiness of what it
// staged (scanned in the staging tree, so it names the root to scan),
// drops it under --quiet, and gives it in --json.
func TestInstallReadiness(t *testing.T) {
	gh := scanWorld(t)
	key, allowed := testKeys(t)
	owner, _, _ := stagingOwner(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "slurm.tar")
	mustRunCLI(t, "fetch", "--quiet", "--with-deps", "--github-url", gh.URL(), "--sign-key", key, "--cache", filepath.Join(dir, "cache"), "-o", bundle, "slurm@4.0.9")

	root := t.TempDir()
	install := func(flags ...string) string {
		args := append([]string{"install", "--allowed-signers", allowed, "--root", root, "--owner", owner, "--builder", "native"}, flags...)
		return mustRunCLI(t, append(args, bundle)...)
	}
	out := install()
	hint := " — ccmirror scan --root " + root + " "
	wantSlurm := "slurm 4.0.9: nodes will reach 1 host, PyPI and the OS package repositories at boot, 1 blob missing" + hint
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 {
		t.Fatalf("install output:\n%s", out)
	}
	tail := lines[len(lines)-3:]
	for i, prefix := range []string{"healthagent 1.0.2: ", "monitoring 1.0.3: nodes will reach 2 hosts at boot" + hint, wantSlurm} {
		if !strings.HasPrefix(tail[i], prefix) {
			t.Errorf("readiness line %d %q, want it to start %q\n%s", i, tail[i], prefix, out)
		}
	}

	// Again (already installed): still said; quiet: nothing on stdout.
	if out := install("--quiet"); out != "" {
		t.Errorf("install --quiet printed %q", out)
	}
	// --quiet keeps the warnings.
	unsigned := filepath.Join(dir, "unsigned.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", filepath.Join(dir, "cache"), "-o", unsigned, "healthagent@1.0.2")
	code, stdout, stderr := runCLI(t, "install", "--quiet", "--insecure-skip-signature", "--root", t.TempDir(), "--owner", owner, "--builder", "native", unsigned)
	if code != exitOK || stdout != "" || !strings.Contains(stderr, "warning:") {
		t.Errorf("install --quiet of an unsigned bundle: exit %d, stdout %q, stderr %q; want 0, nothing, the warning", code, stdout, stderr)
	}

	var rep struct {
		Status    string      `json:"status"`
		Readiness []readiness `json:"readiness"`
	}
	decodeJSON(t, install("--json"), &rep)
	if len(rep.Readiness) != 3 || !strings.HasPrefix(rep.Readiness[2].Summary, wantSlurm) || rep.Status == "" {
		t.Errorf("install --json: status %q, readiness %+v", rep.Status, rep.Readiness)
	}
}

// TestREADMEAirGap runs every ccmirror command of the README section "Is
// my cluster ready for the air gap?" (fetch from a fake GitHub serving
// real-shaped scripts, scans of the bundle and of a staged tree), with its
// paths replaced by the test's, and checks that the readiness lines it
// shows are what fetch prints.
func TestREADMEAirGap(t *testing.T) {
	const title = "Is my cluster ready for the air gap?"
	var cmds []string
	for _, b := range readmeBlocks(t, title) {
		for _, line := range strings.Split(b, "\n") {
			line, _, _ = strings.Cut(line, "#")
			if line = strings.TrimSpace(line); strings.HasPrefix(line, "ccmirror ") {
				cmds = append(cmds, line)
			}
		}
	}
	if len(cmds) < 4 || !strings.HasPrefix(cmds[len(cmds)-1], "ccmirror fetch ") {
		t.Fatalf("README %q: commands %q, want the scans and the fetch", title, cmds)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	gh := scanWorld(t)
	key, allowed := testKeys(t)
	dir := t.TempDir()
	root := t.TempDir()
	scantest.Stage(t, root, scantest.Slurm4())
	t.Chdir(dir)
	t.Setenv("CCMIRROR_GITHUB_URL", gh.URL())
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	repl := strings.NewReplacer("~/.ssh/ccmirror", key, "allowed_signers", allowed, "/opt/cycle_server", root)
	// The fetch comes last in the README, the scans read what it writes.
	cmds = append(cmds[len(cmds)-1:], cmds[:len(cmds)-1]...)
	for _, line := range cmds {
		args := strings.Fields(repl.Replace(line))[1:]
		code, stdout, stderr := runCLI(t, args...)
		want := exitOK
		if strings.Contains(line, "--strict") {
			want = exitFailure // slurm 4 needs the network
		}
		if code != want {
			t.Fatalf("README command %q: exit %d, want %d\nstdout: %s\nstderr: %s", line, code, want, stdout, stderr)
		}
		if args[0] != "fetch" {
			continue
		}
		for _, r := range []string{"slurm 4.0.9: ", "healthagent 1.0.2: ", "monitoring 1.0.3: "} {
			i := strings.Index(stdout, "\n"+r)
			j := strings.Index(string(readme), "\n"+r)
			if i < 0 || j < 0 {
				t.Fatalf("readiness line %q: in fetch output %v, in README %v\n%s", r, i >= 0, j >= 0, stdout)
			}
			got, _, _ := strings.Cut(stdout[i+1:], "\n")
			shown, _, _ := strings.Cut(string(readme)[j+1:], "\n")
			if got != shown {
				t.Errorf("README shows\n  %s\nfetch prints\n  %s", shown, got)
			}
		}
	}
}
