package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/staging"
)

// readmeBlocks returns the ```sh blocks of the README section whose heading
// is title.
func readmeBlocks(t *testing.T, title string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README has no section %q", title)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var blocks []string
	for {
		_, rest, ok := strings.Cut(sec, "```sh\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "```")
		blocks = append(blocks, block)
		sec = after
	}
}

// runBlock runs a README block with bash -e in dir, system paths moved
// under fake (the only change to the text), and fails the test on a non-zero exit.
func runBlock(t *testing.T, block, dir, fake string, env []string) string {
	t.Helper()
	script := block
	for _, p := range []string{"/etc/ccmirror", "/usr/local", "/etc/bash_completion.d"} {
		script = strings.ReplaceAll(script, p, fake+p)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README block failed: %v\n--- block\n%s--- output\n%s", err, block, out)
	}
	return string(out)
}

// buildCCMirror builds this command into dir/name, static as make build does.
func buildCCMirror(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestReadmeQuickStart runs the README's Install and Quick start blocks as
// written, on a "fresh server": an empty /etc/ccmirror (moved into a scratch
// folder, as are /usr/local and /etc/bash_completion.d), the default root
// (CCMIRROR_ROOT points at a scratch root) and default owner cycle_server.
func TestReadmeQuickStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the quick start installs as cycle_server:cycle_server, which needs root (CI runs as root)")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the README's install block names ccmirror-linux-amd64")
	}
	stagingOwner(t) // makes sure cycle_server exists
	gh, err := githubtest.NewServer(githubtest.Options{BlobSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	tmp := t.TempDir()
	fake := filepath.Join(tmp, "fs")
	home := filepath.Join(tmp, "home")
	for _, d := range []string{fake + "/usr/local/bin", fake + "/etc", home} { // as on any server
		os.MkdirAll(d, 0o755)
	}

	// Install: a dist folder as make dist writes it.
	dist := filepath.Join(tmp, "dist")
	os.MkdirAll(dist, 0o755)
	bin := buildCCMirror(t, dist, "ccmirror-linux-amd64")
	for name, kind := range map[string]string{"ccmirror.1": "man", "ccmirror.bash": "bash", "_ccmirror": "zsh"} {
		out, err := exec.Command(bin, "docs", kind).Output()
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dist, name), out, 0o644)
	}
	sums, err := exec.Command("sh", "-c", "cd "+dist+" && sha256sum ccmirror-linux-amd64 ccmirror.1 ccmirror.bash _ccmirror").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dist, "SHA256SUMS"), sums, 0o644)

	env := []string{
		"PATH=" + fake + "/usr/local/bin:" + os.Getenv("PATH"),
		"HOME=" + home,
		"CCMIRROR_GITHUB_URL=" + gh.URL(),
		"CCMIRROR_ROOT=" + filepath.Join(tmp, "root"),
	}
	os.MkdirAll(filepath.Join(tmp, "root"), 0o755)
	install := readmeBlocks(t, "Install")
	if len(install) != 2 {
		t.Fatalf("README Install: want the make dist block and the server block, got %d blocks", len(install))
	}
	out := runBlock(t, install[1], tmp, fake, env)
	if !strings.Contains(out, "ccmirror version") {
		t.Errorf("install block: no version printed:\n%s", out)
	}

	// Quick start: connected side, carry, server side, manual check.
	qs := readmeBlocks(t, "Quick start")
	if len(qs) != 3 {
		t.Fatalf("README Quick start: want 3 blocks (connected, server, manual check), got %d", len(qs))
	}
	connected := filepath.Join(tmp, "connected")
	server := filepath.Join(tmp, "server")
	os.MkdirAll(connected, 0o755)
	os.MkdirAll(server, 0o755)
	runBlock(t, qs[0], connected, fake, env)
	for _, f := range []string{filepath.Join(connected, "slurm-2.5.0.tar"), filepath.Join(home, ".ssh", "ccmirror.pub")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("the connected side did not write %s: %v", f, err)
		}
		os.WriteFile(filepath.Join(server, filepath.Base(f)), b, 0o644)
	}
	out = runBlock(t, qs[1], server, fake, env)
	if _, err := os.Stat(filepath.Join(staging.ProjectsDir(filepath.Join(tmp, "root")), "slurm", "2.5.0", "project.ini")); err != nil {
		t.Errorf("the quick start staged nothing: %v\n%s", err, out)
	}
	out = runBlock(t, qs[2], server, fake, env)
	if !strings.Contains(out, "Good \"ccmirror\" signature") || !strings.Contains(out, "manifest.json: OK") || strings.Contains(out, "FAILED") {
		t.Errorf("manual check block output:\n%s", out)
	}
}
