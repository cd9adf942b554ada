package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/staging"
)

// fixtureReleases is every release the fake GitHub serves from the fixtures.
var fixtureReleases = []struct{ ref, name, version string }{
	{"slurm@2.5.0", "slurm", "2.5.0"},
	{"slurm@2.6.1", "slurm", "2.6.1"},
	{"slurm@2.7.0", "slurm", "2.7.0"},
	{"slurm@2.7.4", "slurm", "2.7.4"},
	{"slurm@3.0.12", "slurm", "3.0.12"},
	{"slurm@4.0.9", "slurm", "4.0.9"},
	{"pbspro@2.0.25", "pbspro", "2.0.25"},
	{"gridengine@2.1.0", "gridengine", "2.1.0"},
	{"hpcpack@2.1.2", "hpcpack", "2.1.2"},
}

// stagingOwner returns the --owner for installs in tests and the uid/gid it
// stands for: as root, a real cycle_server user and group (created when the
// machine lacks them, as CI's does); otherwise the current user.
func stagingOwner(t *testing.T) (spec string, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: installing as the current user; the cycle_server ownership checks run as root (CI)")
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		return u.Username + ":" + g.Name, uid, gid
	}
	if _, err := user.LookupGroup("cycle_server"); err != nil {
		// "already exists" from a concurrent creator is fine: the lookup below decides.
		exec.Command("groupadd", "--system", "cycle_server").Run()
	}
	if _, err := user.Lookup("cycle_server"); err != nil {
		exec.Command("useradd", "--system", "-g", "cycle_server", "-M", "-s", "/usr/sbin/nologin", "cycle_server").Run()
	}
	u, err := user.Lookup("cycle_server")
	if err != nil {
		t.Fatalf("no cycle_server user and useradd could not create one: %v", err)
	}
	g, err := user.LookupGroup("cycle_server")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(g.Gid)
	return "cycle_server:cycle_server", uid, gid
}

// TestRoundTripEveryFixture fetches every fixture release from the fake
// GitHub into a signed bundle, checks it with ccmirror and with plain
// OpenSSH + coreutils, installs it into a scratch root, and checks what
// CycleCloud would see: layout, modes, and ownership by stat.
func TestRoundTripEveryFixture(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	owner, uid, gid := stagingOwner(t)
	root := t.TempDir()
	cache := t.TempDir()
	out := t.TempDir()
	_, sshErr := exec.LookPath("ssh-keygen")

	for _, rel := range fixtureReleases {
		t.Run(rel.ref, func(t *testing.T) {
			bundle := filepath.Join(out, rel.name+"-"+rel.version+".tar")
			mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--sign-key", key, "--cache", cache, "-o", bundle, rel.ref)
			m, _ := readBundle(t, bundle)
			if len(m.Projects) != 1 || m.Projects[0].Name != rel.name || m.Projects[0].Version != rel.version {
				t.Fatalf("bundle holds %+v, want %s %s", m.Projects, rel.name, rel.version)
			}
			if got := mustRunCLI(t, "verify", "--allowed-signers", allowed, bundle); !strings.Contains(got, "OK") {
				t.Errorf("verify said %q", got)
			}

			// Anyone can check the bundle without ccmirror.
			x := t.TempDir()
			if b, err := exec.Command("tar", "-xf", bundle, "-C", x).CombinedOutput(); err != nil {
				t.Fatalf("tar -xf: %v\n%s", err, b)
			}
			if sshErr == nil {
				sums, _ := os.ReadFile(filepath.Join(x, manifest.SumsName))
				cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "ops@example.com", "-n", "ccmirror", "-s", filepath.Join(x, manifest.SignatureName))
				cmd.Stdin = bytes.NewReader(sums)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("ssh-keygen -Y verify: %v\n%s", err, b)
				}
			}
			cmd := exec.Command("sha256sum", "--strict", "-c", manifest.SumsName)
			cmd.Dir = x
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("sha256sum -c: %v\n%s", err, b)
			}

			mustRunCLI(t, "install", "--allowed-signers", allowed, "--root", root, "--owner", owner, "--builder", "native", bundle)
			checkStaged(t, root, m.Projects[0], uid, gid)
		})
	}

	// Every version is reported complete, and reinstalling changes nothing.
	var st staging.StatusReport
	decodeJSON(t, mustRunCLI(t, "status", "--json", "--root", root), &st)
	if n := len(st.Versions); n != len(fixtureReleases) {
		t.Errorf("status lists %d project versions, want %d", n, len(fixtureReleases))
	}
	for _, v := range st.Versions {
		if !v.OK || v.OwnerProblemCount != 0 {
			t.Errorf("status: %s %s not complete: %+v", v.Name, v.Version, v)
		}
	}
	before := treeListing(t, staging.ProjectsDir(root))
	got := mustRunCLI(t, "install", "--allowed-signers", allowed, "--root", root, "--owner", owner, filepath.Join(out, "slurm-2.5.0.tar"))
	if !strings.Contains(got, "already installed") {
		t.Errorf("reinstall said %q, want 'already installed'", got)
	}
	if after := treeListing(t, staging.ProjectsDir(root)); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Error("reinstalling the same bundle changed the staging tree")
	}
}

// checkStaged asserts what CycleCloud needs of one installed version.
func checkStaged(t *testing.T, root string, p manifest.Project, uid, gid int) {
	t.Helper()
	proj := filepath.Join(staging.ProjectsDir(root), p.Name)
	ver := filepath.Join(proj, p.Version)
	ini, err := os.Open(filepath.Join(ver, "project.ini"))
	if err != nil {
		t.Fatalf("staged version has no project.ini: %v", err)
	}
	pi, err := manifest.ParseProjectINI(ini, ini.Name())
	ini.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range pi.Blobs {
		if _, err := os.Stat(filepath.Join(proj, "blobs", b)); err != nil {
			t.Errorf("blob %s named by project.ini is not staged: %v", b, err)
		}
	}
	for _, b := range p.Blobs {
		if got := fileSHA256(t, filepath.Join(proj, "blobs", b.Name)); got != b.SHA256 {
			t.Errorf("staged blob %s has sha256 %s, want %s", b.Name, got, b.SHA256)
		}
	}
	// Every spec's cluster-init and chef trees sit under <version>/<spec>/,
	// scripts stay executable, and everything belongs to the owner.
	specs, scripts := 0, 0
	err = filepath.Walk(proj, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
		}
		rel, _ := filepath.Rel(ver, path)
		if parts := strings.Split(rel, string(filepath.Separator)); len(parts) == 2 && (parts[1] == "cluster-init" || parts[1] == "chef") {
			specs++
		}
		if fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			scripts++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if specs == 0 {
		t.Errorf("%s: no <spec>/cluster-init or <spec>/chef folder staged", ver)
	}
	if scripts == 0 {
		t.Errorf("%s: no executable file staged, though every fixture has some (modes from the source must be kept)", proj)
	}
	// Nothing of ccmirror's own lives among the projects.
	if entries, _ := os.ReadDir(staging.ProjectsDir(root)); len(entries) > 0 {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("ccmirror left %s in the projects folder", e.Name())
			}
		}
	}
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("bad JSON %q: %v", s, err)
	}
}

// TestExitCodes checks that bad input gets the documented exit code and one
// clear line on stderr.
func TestExitCodes(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	good := filepath.Join(dir, "good.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--sign-key", key, "--cache", cache, "-o", good, "gridengine@2.1.0")
	unsigned := filepath.Join(dir, "unsigned.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", cache, "-o", unsigned, "gridengine@2.1.0")
	tampered := filepath.Join(dir, "tampered.tar")
	b, _ := os.ReadFile(good)
	b[len(b)-20000] ^= 1 // inside the last payload file
	os.WriteFile(tampered, b, 0o644)
	owner, _, _ := stagingOwner(t)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	_, otherAllowed := testKeys(t)
	notBundle := filepath.Join(dir, "notbundle.tar")
	os.WriteFile(notBundle, nil, 0o644)
	outDir := filepath.Join(dir, "outdir")
	os.MkdirAll(outDir, 0o755)

	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no ref", []string{"fetch", "--unsigned"}, exitUsage, "name at least one REF"},
		{"unknown flag", []string{"fetch", "--bogus"}, exitUsage, "bogus"},
		{"bad ref", []string{"fetch", "--unsigned", "not a ref"}, exitUsage, "not a ref"},
		{"no sign key", []string{"fetch", "slurm@2.5.0"}, exitUsage, "--sign-key"},
		{"release missing", []string{"fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", cache, "-o", filepath.Join(dir, "x.tar"), "slurm@9.9.9"}, exitUpstream, "9.9.9"},
		{"verify tampered", []string{"verify", "--allowed-signers", allowed, tampered}, exitVerify, "sha256"},
		{"verify unsigned", []string{"verify", "--allowed-signers", allowed, unsigned}, exitVerify, "unsigned"},
		{"verify untrusted key", []string{"verify", "--allowed-signers", otherAllowed, good}, exitVerify, "not in allowed_signers"},
		{"verify missing file", []string{"verify", "--allowed-signers", allowed, filepath.Join(dir, "nope.tar")}, exitFailure, "nope.tar"},
		{"install tampered", []string{"install", "--allowed-signers", allowed, "--root", root, "--owner", owner, tampered}, exitVerify, "sha256"},
		{"install no trust", []string{"install", "--root", root, good}, exitUsage, "--allowed-signers"},
		{"blob dir missing", []string{"fetch", "--unsigned", "--blob-dir", filepath.Join(dir, "nope"), "gridengine@2.1.0"}, exitUsage, "--blob-dir"},
		{"allowed signers is a folder", []string{"verify", "--allowed-signers", dir, good}, exitFailure, "allowed_signers"},
		{"status no root", []string{"status", "--root", filepath.Join(dir, "typo")}, exitFailure, "typo does not exist"},
		{"install bad builder", []string{"install", "--allowed-signers", allowed, "--builder", "magic", good}, exitUsage, "--builder"},
		{"fetch bad github url", []string{"fetch", "--unsigned", "--github-url", "ftp://example.com", "gridengine@2.1.0"}, exitUsage, "--github-url"},
		{"push zero concurrency", []string{"push", "--concurrency", "0", good, "http://127.0.0.1:1/devstoreaccount1/bundles/"}, exitUsage, "--concurrency"},
		{"push bad blob url", []string{"push", good, "notaurl"}, exitUsage, "notaurl"},
		{"split not a bundle", []string{"split", "--unsigned", "--size", "1K", notBundle}, exitVerify, "notbundle.tar: not a ccmirror bundle"},
		{"split missing dir", []string{"split", "--unsigned", "--dir", filepath.Join(dir, "nodir"), good}, exitFailure, "--dir " + filepath.Join(dir, "nodir") + " does not exist"},
		{"plan output is a directory", []string{"plan", "--root", root, "-o", outDir}, exitFailure, "output " + outDir + " is a directory"},
		{"join output dir missing", []string{"join", "--insecure-skip-signature", filepath.Join(dir, "nope.tar.parts"), "-o", filepath.Join(dir, "nodir", "j.tar")}, exitFailure, "output directory " + filepath.Join(dir, "nodir") + " does not exist"},
		{"join twice-named", []string{"join", "--insecure-skip-signature", filepath.Join(dir, "nope.tar.parts"), "-o", filepath.Join(dir, "j.tar")}, exitFailure, "ccmirror: join " + filepath.Join(dir, "nope.tar.parts") + ": open "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "ccmirror: ") || !strings.Contains(last, tc.msg) {
				t.Errorf("last stderr line %q, want one 'ccmirror: …' line mentioning %q", last, tc.msg)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
		t.Error("a failed fetch left a bundle behind")
	}
	if m, _ := filepath.Glob(notBundle + ".*"); len(m) != 0 {
		t.Errorf("split of a non-bundle wrote %v", m)
	}
	if entries, _ := os.ReadDir(staging.ProjectsDir(root)); len(entries) != 0 {
		t.Errorf("failed installs wrote %d entries into staging", len(entries))
	}

	// A differing staged version is a conflict (exit 5) until --force.
	mustRunCLI(t, "install", "--allowed-signers", allowed, "--root", root, "--owner", owner, good)
	ini := filepath.Join(staging.ProjectsDir(root), "gridengine", "2.1.0", "project.ini")
	os.WriteFile(ini, []byte("[project]\nname = gridengine\nversion = 2.1.0\n"), 0o644)
	// status sees the edit too, and exits 4 for monitoring (the report
	// still printed).
	var st staging.StatusReport
	code, stdout, stderr := runCLI(t, "status", "--json", "--root", root)
	if code != exitVerify || !strings.Contains(stderr, "gridengine 2.1.0") {
		t.Errorf("status with a changed version: exit %d, stderr %q; want exit %d naming it", code, stderr, exitVerify)
	}
	decodeJSON(t, stdout, &st)
	if len(st.Versions) != 1 || st.Versions[0].OK || st.Versions[0].ChangedCount != 1 ||
		st.Versions[0].Changed[0] != (staging.FileChange{Path: "project.ini", State: "modified"}) {
		t.Errorf("status after editing the staged project.ini: %+v", st.Versions)
	}
	if code, _, stderr := runCLI(t, "install", "--allowed-signers", allowed, "--root", root, "--owner", owner, good); code != exitConflict {
		t.Errorf("install over a changed version: exit %d, want %d; %s", code, exitConflict, stderr)
	}
	mustRunCLI(t, "install", "--allowed-signers", allowed, "--root", root, "--owner", owner, "--force", good)
	if b, _ := os.ReadFile(ini); !bytes.Contains(b, []byte("[blobs]")) {
		t.Error("--force did not restore the bundle's project.ini")
	}
	mustRunCLI(t, "status", "--root", root)

	// A version folder without its project.ini is incomplete: exit 4 too,
	// in text and JSON.
	if err := os.Remove(ini); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status", "--root", root}, {"status", "--root", root, "--json"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != exitVerify || !strings.Contains(stderr, "without project.ini") || !strings.Contains(stderr, "gridengine/2.1.0") {
			t.Errorf("%v on an incomplete version: exit %d, stderr %q; want exit %d naming it", args, code, stderr, exitVerify)
		}
		if args[len(args)-1] == "--json" {
			var st staging.StatusReport
			decodeJSON(t, stdout, &st)
			if len(st.Incomplete) != 1 {
				t.Errorf("status --json incomplete = %v, want the gridengine 2.1.0 folder", st.Incomplete)
			}
		}
	}
}

// TestHelpListsEveryVerb checks that `ccmirror --help` names every verb
// with its purpose and shows an example of each.
func TestHelpListsEveryVerb(t *testing.T) {
	out := mustRunCLI(t, "--help")
	for _, c := range newApp(&env{}).Commands {
		if c.Usage == "" || !strings.Contains(out, c.Name+"  ") || !strings.Contains(out, c.Usage) {
			t.Errorf("--help lacks %s with its purpose %q", c.Name, c.Usage)
		}
		if !strings.Contains(out, "ccmirror "+c.Name+" ") {
			t.Errorf("--help shows no example of %s", c.Name)
		}
	}
	// --verbose is global but may follow the verb, like every other flag.
	if code, _, stderr := runCLI(t, "status", "--root", t.TempDir(), "--verbose"); code != exitOK {
		t.Errorf("status … --verbose: exit %d: %s", code, stderr)
	}
	if v := mustRunCLI(t, "--version"); !strings.HasPrefix(v, "ccmirror version ") {
		t.Errorf("--version printed %q", v)
	}
}

// verify names --insecure-skip-signature for unsigned bundles; the flag must
// exist there and check the hashes only.
func TestVerifyInsecureSkipSignature(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	dir := t.TempDir()
	unsigned := filepath.Join(dir, "unsigned.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", filepath.Join(dir, "cache"), "-o", unsigned, "gridengine@2.1.0")
	code, out, stderr := runCLI(t, "verify", "--insecure-skip-signature", unsigned)
	if code != exitOK || !strings.Contains(stderr, "NOT checked") || !strings.Contains(out, "every hash matches") {
		t.Errorf("verify --insecure-skip-signature of an unsigned bundle: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	b, _ := os.ReadFile(unsigned)
	b[len(b)-20000] ^= 1
	os.WriteFile(unsigned, b, 0o644)
	if code, _, stderr := runCLI(t, "verify", "--insecure-skip-signature", unsigned); code != exitVerify {
		t.Errorf("verify --insecure-skip-signature of a tampered bundle: exit %d, want 4; stderr: %s", code, stderr)
	}
}
