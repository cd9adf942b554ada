package staging

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	type check func(t *testing.T, e *env)
	cases := []struct {
		name    string
		breakIt func(t *testing.T, e *env)
		ok      bool
		check   check
	}{
		{name: "healthy", ok: true, check: func(t *testing.T, e *env) {}},
		{name: "blob deleted", breakIt: func(t *testing.T, e *env) {
			if err := os.Remove(e.staged("demo/blobs/shared-1.0.whl")); err != nil {
				t.Fatal(err)
			}
		}, check: blobState("shared-1.0.whl", BlobMissing)},
		{name: "blob changed", breakIt: func(t *testing.T, e *env) {
			if err := os.WriteFile(e.staged("demo/blobs/demo-pkg-1.0.0.tar.gz"), filler("evil", 5000), 0o644); err != nil {
				t.Fatal(err)
			}
		}, check: blobState("demo-pkg-1.0.0.tar.gz", BlobMismatch)},
		{name: "wrong owner", breakIt: func(t *testing.T, e *env) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown to a cycle_server user")
			}
			if err := os.Lchown(e.staged("demo/1.0.0/default/cluster-init/scripts/10.sh"), 0, 0); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, e *env) {
			st, _ := e.status()
			v := st.Versions[0]
			if v.OwnerProblemCount != 1 || !strings.HasSuffix(v.OwnerProblems[0].Path, "scripts/10.sh") {
				t.Errorf("owner problems %d %+v", v.OwnerProblemCount, v.OwnerProblems)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)
			e.mustInstall(bundle)
			if tc.breakIt != nil {
				tc.breakIt(t, e)
			}
			st, err := e.status()
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Versions) != 1 {
				t.Fatalf("versions %+v", st.Versions)
			}
			v := st.Versions[0]
			if v.OK != tc.ok || (st.Problems == 0) != tc.ok {
				t.Errorf("ok %v problems %d, want ok %v: %+v", v.OK, st.Problems, tc.ok, v)
			}
			if v.InstalledBy == nil || v.InstalledBy.HeadSHA256 != headSum(t, bundle) || v.InstalledBy.Signer == nil || v.InstalledBy.Signer.Principal != "admin@example.com" {
				t.Errorf("installed by %+v", v.InstalledBy)
			}
			if v.Owner != e.opts.Owner {
				t.Errorf("expected owner %q, want %q", v.Owner, e.opts.Owner)
			}
			tc.check(t, e)
			var text bytes.Buffer
			if err := st.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "demo 1.0.0") {
				t.Errorf("status text:\n%s", text.String())
			}
		})
	}
}

func blobState(name, state string) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) {
		t.Helper()
		st, _ := e.status()
		for _, b := range st.Versions[0].Blobs {
			if b.Name == name {
				if b.State != state {
					t.Errorf("blob %s: %s, want %s", name, b.State, state)
				}
				return
			}
		}
		t.Errorf("blob %s not reported", name)
	}
}

func TestStatusWithoutRecords(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := ProjectsDir(root) + "/manual/3.0.0"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(ProjectsDir(root)+"/manual/blobs", 0o755); err != nil {
		t.Fatal(err)
	}
	ini := "[project]\nname = manual\nversion = 3.0.0\n\n[blobs]\nFiles = here.tgz, gone.tgz\n"
	if err := os.WriteFile(dir+"/project.ini", []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ProjectsDir(root)+"/manual/blobs/here.tgz", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(ProjectsDir(root)+"/manual/notaversion", 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := Status(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Versions) != 1 {
		t.Fatalf("versions %+v", st.Versions)
	}
	v := st.Versions[0]
	if v.InstalledBy != nil {
		t.Errorf("installed by %+v, want none", v.InstalledBy)
	}
	states := map[string]string{}
	for _, b := range v.Blobs {
		states[b.Name] = b.State
	}
	if states["here.tgz"] != BlobUnknown || states["gone.tgz"] != BlobMissing || v.OK {
		t.Errorf("blob states %v ok %v", states, v.OK)
	}
	if !strings.Contains(strings.Join(st.Warnings, "\n"), "notaversion has no project.ini") {
		t.Errorf("warnings %v", st.Warnings)
	}
	var text bytes.Buffer
	_ = st.WriteText(&text)
	if !strings.Contains(text.String(), "no trusted install record") || !strings.Contains(text.String(), "gone.tgz: missing") {
		t.Errorf("status text:\n%s", text.String())
	}
	// An empty root has nothing staged.
	empty, err := Status(t.TempDir())
	if err != nil || len(empty.Versions) != 0 {
		t.Errorf("empty root: %+v %v", empty, err)
	}
}

func TestStatusReportsRunningInstall(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	state := filepath.Join(t.TempDir(), "state")
	if err := prepareState(state); err != nil {
		t.Fatal(err)
	}
	l, err := acquireLock(t.Context(), lockPath(state), 0, "x.tar", discardLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	so := StatusOptions{Root: root, StateDir: state}
	st, err := StatusWith(so)
	l.Release()
	if err != nil || !strings.Contains(st.InstallRunning, "x.tar") {
		t.Errorf("running install not reported: %+v %v", st, err)
	}
	st, _ = StatusWith(so)
	if st.InstallRunning != "" {
		t.Errorf("released lock still reported: %q", st.InstallRunning)
	}
}

// TestStatusReadsStagedFilesSafely: after an install, the blobs and a
// version file are swapped for a FIFO, a symlink to a secret outside the
// root and a huge sparse file. Status finishes, reports each as a problem,
// reads none of them, and never prints the secret.
func TestStatusReadsStagedFilesSafely(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	e := newEnv(t)
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("SECRET-CONTENT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	replace := func(rel string, make func(p string) error) {
		p := e.staged(rel)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := make(p); err != nil {
			t.Fatal(err)
		}
	}
	replace("demo/blobs/shared-1.0.whl", func(p string) error { return syscall.Mkfifo(p, 0o644) })
	replace("demo/blobs/demo-pkg-1.0.0.tar.gz", func(p string) error { return os.Symlink(secret, p) })
	replace("demo/1.0.0/default/cluster-init/files/config.txt", func(p string) error {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(1 << 40)
	})
	replace("demo/1.0.0/x/cluster-init/scripts/20.sh", func(p string) error { return syscall.Mkfifo(p, 0o755) })
	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Versions) != 1 || st.Versions[0].OK {
		t.Fatalf("status %+v, want one version with problems", st.Versions)
	}
	v := st.Versions[0]
	for _, b := range v.Blobs {
		if b.State == BlobOK {
			t.Errorf("blob %s reported ok", b.Name)
		}
	}
	changed := map[string]string{}
	for _, c := range v.Changed {
		changed[c.Path] = c.State
	}
	if changed["default/cluster-init/files/config.txt"] != "modified" {
		t.Errorf("sparse replacement not reported modified: %v", changed)
	}
	all := strings.Join(st.Warnings, "\n")
	for _, want := range []string{"shared-1.0.whl is a FIFO", "demo-pkg-1.0.0.tar.gz is a symbolic link"} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning %q in %q", want, st.Warnings)
		}
	}
	var text bytes.Buffer
	if err := st.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String()+all, "SECRET") {
		t.Errorf("status prints the secret:\n%s", text.String())
	}
}
