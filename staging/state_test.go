package staging

import (
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestStateDirDefault(t *testing.T) {
	t.Parallel()
	a := StateDir("/opt/cycle_server")
	for _, same := range []string{"/opt/cycle_server/", "/opt/./cycle_server", "/opt/x/../cycle_server"} {
		if got := StateDir(same); got != a {
			t.Errorf("StateDir(%q) = %s, want %s (same root)", same, got, a)
		}
	}
	if b := StateDir("/srv/cycle_server"); b == a {
		t.Errorf("two roots share the state folder %s", a)
	}
	if !strings.Contains(filepath.Base(a), "cycle_server-") || strings.HasPrefix(a, "/opt/cycle_server") {
		t.Errorf("StateDir = %s, want a folder named after the root, outside it", a)
	}
	if os.Geteuid() == 0 && filepath.Dir(a) != DefaultStateBase {
		t.Errorf("as root StateDir = %s, want it under %s", a, DefaultStateBase)
	}
}

// cycleServerUID is the uid of the real cycle_server account, the attacker
// of issue 13.
func cycleServerUID(t *testing.T) int {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: plays the cycle_server account against root's state")
	}
	needTestUsers(t)
	u, err := user.Lookup("cycle_server")
	if err != nil {
		t.Skipf("no cycle_server user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	return uid
}

// TestStateDirRefused: a state folder that cycle_server (or anyone but
// root) could change is refused before anything is written, naming the
// path and the fix.
func TestStateDirRefused(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)
	cases := []struct {
		name  string
		setup func(t *testing.T, base string) string // returns the state dir
		want  string
	}{
		{"parent writable by all", func(t *testing.T, base string) string {
			p := filepath.Join(base, "open")
			mustMkdir(t, p, 0o777)
			return filepath.Join(p, "state")
		}, "is writable by group or others"},
		{"state folder writable by its group", func(t *testing.T, base string) string {
			p := filepath.Join(base, "state")
			mustMkdir(t, p, 0o770)
			return p
		}, "is writable by group or others"},
		{"state folder is a symlink", func(t *testing.T, base string) string {
			real := filepath.Join(base, "real")
			mustMkdir(t, real, 0o700)
			link := filepath.Join(base, "link")
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "is a symlink or not a folder"},
		{"parent is a symlink", func(t *testing.T, base string) string {
			real := filepath.Join(base, "real")
			mustMkdir(t, real, 0o755)
			if err := os.Symlink(real, filepath.Join(base, "link")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(base, "link", "state")
		}, "is a symlink or not a folder"},
		{"parent owned by cycle_server", func(t *testing.T, base string) string {
			uid := cycleServerUID(t)
			p := filepath.Join(base, "cs")
			mustMkdir(t, p, 0o755)
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(p, "state")
		}, "belongs to uid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			state := tc.setup(t, t.TempDir())
			before := snapshot(t, stagingTree(e.root))
			_, err := e.install(bundle, func(o *InstallOptions) { o.StateDir = state })
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--state-dir") {
				t.Fatalf("install with state %s: %v, want a refusal saying %q and naming --state-dir", state, err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("refusal is not one line: %q", err)
			}
			if d := diffSnap(before, snapshot(t, stagingTree(e.root))); d != "" {
				t.Errorf("refused install changed the staging tree:\n%s", d)
			}
			st, err := StatusWith(StatusOptions{Root: e.root, StateDir: state})
			if err != nil || !strings.Contains(strings.Join(st.Warnings, "\n"), "not trusted") {
				t.Errorf("status with an unsafe state folder: %v %v, want a warning that records are not trusted", st, err)
			}
		})
	}
	t.Run("root-owned sticky parent, like /tmp", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		p := filepath.Join(t.TempDir(), "sticky")
		mustMkdir(t, p, os.ModeSticky|0o777)
		e.mustInstall(bundle, func(o *InstallOptions) { o.StateDir = filepath.Join(p, "state") })
	})
}

func mustMkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestForgedStateRefused: a lock, journal or record in the state folder
// that root did not make is refused or not trusted, and root-owned canary
// files outside the root are never touched.
func TestForgedStateRefused(t *testing.T) {
	t.Parallel()
	uid := cycleServerUID(t)
	k, _ := testKeys(t)
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)
	canaryDir := t.TempDir()
	canary := filepath.Join(canaryDir, "canary")
	if err := os.WriteFile(canary, []byte("root's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(canaryDir, "evil")
	if err := os.WriteFile(evil, []byte("attacker's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	canaries := snapshot(t, canaryDir)
	journal := func(t *testing.T, dir string, owner int, ops ...journalOp) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		var b []byte
		for _, op := range ops {
			line, _ := json.Marshal(op)
			b = append(append(b, line...), '\n')
		}
		p := filepath.Join(dir, journalName)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, owner, owner); err != nil {
			t.Fatal(err)
		}
	}
	// The journal trick of issue 13: rename the attacker's file over a root
	// file, as the undo of a "replace".
	overCanary := journalOp{Op: opReplace, Path: canary, Backup: evil}
	cases := []struct {
		name  string
		setup func(t *testing.T, e *env)
		want  string // "" = install succeeds
	}{
		{"lock file of cycle_server", func(t *testing.T, e *env) {
			if err := os.WriteFile(lockPath(e.state), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(lockPath(e.state), uid, uid); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid"},
		{"lock is a symlink", func(t *testing.T, e *env) {
			if err := os.Symlink(canary, lockPath(e.state)); err != nil {
				t.Fatal(err)
			}
		}, "lock"},
		{"journal of cycle_server", func(t *testing.T, e *env) {
			journal(t, filepath.Join(tmpRoot(e.state), "install-1"), uid, overCanary)
		}, "belongs to uid"},
		{"root's journal naming a path outside the staging tree", func(t *testing.T, e *env) {
			journal(t, filepath.Join(tmpRoot(e.state), "install-1"), 0, overCanary)
		}, "outside the staging tree"},
		{"temporary folder of cycle_server", func(t *testing.T, e *env) {
			d := filepath.Join(tmpRoot(e.state), "install-1")
			journal(t, d, 0, overCanary)
			if err := os.Lchown(d, uid, uid); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid"},
		{"journal left in the old state folder under the root", func(t *testing.T, e *env) {
			journal(t, filepath.Join(legacyStateDir(e.root), "tmp", "install-1"), uid, overCanary)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if err := prepareState(e.state); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, e)
			_, err := e.install(bundle, func(o *InstallOptions) { o.LockWait = -1 })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("install: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("install: %v, want a refusal mentioning %q", err, tc.want)
			}
			if d := diffSnap(canaries, snapshot(t, canaryDir)); d != "" {
				t.Errorf("files outside the root changed:\n%s", d)
			}
		})
	}
}

// TestRecordsNotTrusted: records cycle_server could have written (in the
// old state folder under the root, or owned by it in the state folder) do
// not make a version look installed by ccmirror.
func TestRecordsNotTrusted(t *testing.T) {
	t.Parallel()
	uid := cycleServerUID(t)
	k, _ := testKeys(t)
	e := newEnv(t)
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	recs, _, err := readRecords(e.state)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %v %v", recs, err)
	}
	// The same record, moved to the old place under the root.
	legacy := recordsDir(legacyStateDir(e.root))
	if err := os.MkdirAll(legacy, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(recs[0].Path, filepath.Join(legacy, filepath.Base(recs[0].Path))); err != nil {
		t.Fatal(err)
	}
	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Versions) != 1 || st.Versions[0].InstalledBy != nil {
		t.Errorf("a record under R/work/ccmirror is trusted: %+v", st.Versions)
	}
	if !strings.Contains(strings.Join(st.Warnings, "\n"), "are not trusted") {
		t.Errorf("no warning about the old records: %q", st.Warnings)
	}
	// A record of cycle_server's in the state folder.
	forged := filepath.Join(recordsDir(e.state), "forged.json")
	if err := os.Rename(filepath.Join(legacy, filepath.Base(recs[0].Path)), forged); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(forged, uid, uid); err != nil {
		t.Fatal(err)
	}
	st, err = e.status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Versions[0].InstalledBy != nil || !strings.Contains(strings.Join(st.Warnings, "\n"), "forged.json belongs to uid") {
		t.Errorf("a record owned by cycle_server is trusted: %+v %q", st.Versions[0].InstalledBy, st.Warnings)
	}
	var text strings.Builder
	if err := st.WriteText(&text); err != nil || !strings.Contains(text.String(), "no trusted install record") {
		t.Errorf("status text does not say the record is missing:\n%s", text.String())
	}
}
