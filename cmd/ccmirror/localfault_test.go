package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// mountTmpfs mounts a tmpfs with opts at a new folder and returns it; it
// skips the test when it cannot (not root, no mount).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// runBinary runs bin with args as uid:gid and returns its exit code and
// stderr.
func runBinary(t *testing.T, bin string, uid, gid int, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

func remount(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, opts, err, out)
	}
}

// A staging filesystem that fills up (out of inodes: the free-space
// preflight cannot see it coming), is read-only, or refuses the user is a
// local fault: exit 1, one line naming the path and the errno, and the
// staging tree and the state folder exactly as before.
func TestInstallLocalFaults(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts tmpfs filesystems and runs ccmirror as cycle_server")
	}
	gh, err := githubtest.NewServer(githubtest.Options{BlobSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "b.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--sign-key", key, "--cache", filepath.Join(work, "cache"), "-o", bundle, "slurm@3.0.12")
	owner, uid, gid := stagingOwner(t)

	// world makes a staging root and a state folder on one fresh tmpfs.
	world := func(t *testing.T) (mnt, root, state string) {
		mnt = mountTmpfs(t, "size=64m,mode=0755")
		root, state = filepath.Join(mnt, "root"), filepath.Join(mnt, "state")
		os.MkdirAll(filepath.Join(root, "work", "staging", "projects"), 0o755)
		os.MkdirAll(state, 0o700)
		return mnt, root, state
	}
	install := func(root, state string) []string {
		return []string{"install", "--quiet", "--allowed-signers", allowed, "--root", root, "--state-dir", state, "--owner", owner, bundle}
	}
	check := func(t *testing.T, code int, stderr, errno, path string, before map[string]string, root string) {
		t.Helper()
		if code != exitFailure {
			t.Errorf("exit %d, want %d; stderr: %s", code, exitFailure, stderr)
		}
		msg := strings.TrimSpace(stderr)
		if strings.Contains(msg, "\n") {
			t.Errorf("more than one line: %q", msg)
		}
		if !strings.Contains(msg, errno) || !strings.Contains(msg, path) {
			t.Errorf("error %q does not name %s and %s", msg, errno, path)
		}
		if after := stagingState(t, root); !mapsEqual(sansFolderTimes(before), sansFolderTimes(after)) {
			t.Errorf("the staging tree changed: before %v, after %v", before, after)
		}
	}

	t.Run("ENOSPC", func(t *testing.T) {
		// Out of inodes after 12, 24, … more: the install fails while it
		// unpacks, while it builds, while it places blobs and versions in
		// the staging tree; each time it is undone.
		mnt, root, state := world(t)
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(mnt, &sfs); err != nil {
			t.Fatal(err)
		}
		used := sfs.Files - sfs.Ffree
		before := stagingState(t, root)
		failures := 0
		for extra := uint64(12); ; extra += 12 {
			remount(t, mnt, "nr_inodes="+strconv.FormatUint(used+extra, 10))
			code, _, stderr := runCLI(t, install(root, state)...)
			if code == 0 {
				break
			}
			failures++
			check(t, code, stderr, "ENOSPC", mnt, before, root)
			if ents, _ := os.ReadDir(filepath.Join(state, "tmp")); len(ents) != 0 {
				t.Errorf("with %d inodes free, the failed install left %d temporary folders", extra, len(ents))
			}
			if extra > 2000 {
				t.Fatal("the install still fails with 2000 inodes free")
			}
		}
		if failures < 3 {
			t.Errorf("only %d failing budgets: the bundle is too small to fail at several stages", failures)
		}
		t.Logf("%d failing inode budgets, then the install went through", failures)
	})
	t.Run("EROFS staging", func(t *testing.T) {
		// The staging tree read-only (a read-only bind mount), the state
		// folder writable on the same filesystem.
		_, root, state := world(t)
		projects := filepath.Join(root, "work", "staging", "projects")
		if out, err := exec.Command("mount", "--bind", projects, projects).CombinedOutput(); err != nil {
			t.Skipf("cannot bind mount: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", "-l", projects).Run() })
		remount(t, projects, "bind,ro")
		before := stagingState(t, root)
		code, _, stderr := runCLI(t, install(root, state)...)
		check(t, code, stderr, "EROFS", projects, before, root)
	})
	t.Run("EROFS state", func(t *testing.T) {
		mnt, root, state := world(t)
		remount(t, mnt, "ro")
		before := stagingState(t, root)
		code, _, stderr := runCLI(t, install(root, state)...)
		check(t, code, stderr, "EROFS", mnt, before, root)
	})
	t.Run("EACCES", func(t *testing.T) {
		// ccmirror run as cycle_server, giving files to itself, on a
		// staging tree root owns: the kernel refuses it.
		_, root, state := world(t)
		os.Chown(state, uid, gid)
		bin := buildCCMirror(t, t.TempDir(), "ccmirror")
		for _, p := range []string{filepath.Dir(bin), bin, work, bundle, allowed} {
			os.Chmod(p, 0o755)
		}
		for _, d := range []string{work, bin} {
			for p := filepath.Dir(d); p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
				os.Chmod(p, 0o755)
			}
		}
		before := stagingState(t, root)
		code, stderr := runBinary(t, bin, uid, gid, install(root, state)...)
		check(t, code, stderr, "EACCES", filepath.Join(root, "work", "staging", "projects"), before, root)
	})
}

// sansFolderTimes drops the modification time of folders from a
// stagingState listing: an undone install leaves every entry as it was,
// but the folders it changed and changed back have a new mtime.
func sansFolderTimes(m map[string]string) map[string]string {
	out := map[string]string{}
	for p, v := range m {
		if f := strings.Fields(v); len(f) == 3 && strings.HasPrefix(f[0], "d") {
			v = f[0] + " " + f[1]
		}
		out[p] = v
	}
	return out
}

// A cache or output folder on a read-only filesystem, or one the user may
// not write, is a local fault of fetch: exit 1 (not 3), one line naming the
// path and the errno, no download retried, nothing written.
func TestFetchLocalFaults(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts tmpfs filesystems and runs ccmirror as cycle_server")
	}
	_, uid, gid := stagingOwner(t)
	bin := buildCCMirror(t, t.TempDir(), "ccmirror")
	for p := bin; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	for _, tc := range []struct {
		name     string
		errno    string
		asServer bool // run as cycle_server, on folders root owns
		where    string
	}{
		{"cache EROFS", "EROFS", false, "cache"},
		{"output EROFS", "EROFS", false, "out"},
		{"cache EACCES", "EACCES", true, "cache"},
		{"output EACCES", "EACCES", true, "out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := mountTmpfs(t, "size=16m,mode=0755")
			ok := t.TempDir() // the other folder: writable
			os.Chown(ok, uid, gid)
			os.Chmod(filepath.Dir(ok), 0o755)
			cache, out := filepath.Join(ok, "cache"), filepath.Join(ok, "b.tar")
			bad := filepath.Join(mnt, "cache")
			if tc.where == "cache" {
				cache = bad
			} else {
				out = filepath.Join(mnt, "b.tar")
				bad = mnt
			}
			if !tc.asServer {
				remount(t, mnt, "ro")
			}
			n := len(gh.Requests())
			runUID, runGID := 0, 0
			if tc.asServer {
				runUID, runGID = uid, gid
			}
			code, stderr := runBinary(t, bin, runUID, runGID, "fetch", "--quiet", "--unsigned", "--github-url", gh.URL(), "--cache", cache, "-o", out, "gridengine@2.1.0")
			msg := strings.TrimSpace(stderr)
			if code != exitFailure || strings.Contains(msg, "\n") || !strings.Contains(msg, tc.errno) || !strings.Contains(msg, bad) {
				t.Errorf("exit %d, stderr %q; want exit %d and one line naming %s and %s", code, msg, exitFailure, bad, tc.errno)
			}
			seen := map[string]int{}
			for _, r := range gh.Requests()[n:] {
				seen[r.Path]++
			}
			for p, k := range seen {
				if k > 1 {
					t.Errorf("%s requested %d times: a local fault was retried", p, k)
				}
			}
			if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
				t.Errorf("left on the faulty filesystem: %v", ents)
			}
		})
	}
}
