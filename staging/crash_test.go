package staging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"github.com/ccmirror/ccmirror/manifest/trust"
)

// childEnv carries a childConfig: when set, the test binary is a child
// installer that SIGKILLs itself at CrashAt (TestMain runs it).
const childEnv = "CCMIRROR_STAGING_TEST_CHILD"

type childConfig struct {
	Bundle     string `json:"bundle"`
	Root       string `json:"root"`
	State      string `json:"state"`
	Owner      string `json:"owner"`
	Allowed    string `json:"allowed"`
	Force      bool   `json:"force"`
	NoExchange bool   `json:"no_exchange"`
	CrashAt    string `json:"crash_at"` // a hook point, or "bytes:N"
}

func childInstall() int {
	var c childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &c); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	var limit int64 = -1
	if n, ok := strings.CutPrefix(c.CrashAt, "bytes:"); ok {
		limit, _ = strconv.ParseInt(n, 10, 64)
	}
	sw := switches{noExchange: c.NoExchange, noSync: true}
	sw.hook = func(p string) {
		if p == c.CrashAt {
			syscallKill()
		}
		if n, ok := strings.CutPrefix(p, "bytes:"); ok && limit >= 0 {
			if v, _ := strconv.ParseInt(n, 10, 64); v >= limit {
				syscallKill()
			}
		}
	}
	a, err := trust.LoadAllowedSigners(c.Allowed)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f, err := os.Open(c.Bundle)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	_, err = install(context.Background(), f, filepath.Base(c.Bundle), InstallOptions{
		Root: c.Root, StateDir: c.State, Owner: c.Owner, Builder: BuilderNative, Force: c.Force, Verify: VerifyOptions{Allowed: a}}, sw)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runChild runs one child installer and reports whether it died by
// SIGKILL.
func runChild(t *testing.T, c childConfig) {
	t.Helper()
	b, _ := json.Marshal(c)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child at %s: finished without being killed (err %v): %s", c.CrashAt, err, stderr.String())
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child at %s: %v, want SIGKILL: %s", c.CrashAt, err, stderr.String())
	}
}

func TestCrashSafety(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("spawns many child installers")
	}
	k, _ := testKeys(t)
	spec, _ := ownerFor(t)
	dir := t.TempDir()
	allowedPath := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(allowedPath, []byte(`admin@example.com namespaces="ccmirror" `+k.pubLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := demoProject(t, "1.0.0", "one")
	bundleA := makeBundle(t, []testProject{a}, k.signer)
	b := demoProject(t, "1.0.0", "two") // differs: script and demo-pkg blob
	b.blobs["extra-2.rpm"] = filler("extra", 2000)
	bundleB := makeBundle(t, []testProject{b}, k.signer)
	pathA, pathB := write("a.tar", bundleA), write("b.tar", bundleB)

	common := []string{"locked", "payload:projects/demo/1.0.0/source.tar.gz", "bytes:4000", "unpacked:demo", "built:demo", "chowned"}
	scenarios := []struct {
		name       string
		old        []byte // installed before the crash, nil for a fresh root
		bundle     string
		force      bool
		noExchange bool
		points     []string
	}{
		{"fresh install", nil, pathA, false, false,
			append(common, "blob:demo/demo-pkg-1.0.0.tar.gz", "blob:demo/shared-1.0.whl", "blobs-synced", "version:demo/1.0.0", "recorded", "committed")},
		{"force replace by exchange", bundleA, pathB, true, false,
			append(common, "blob:demo/demo-pkg-1.0.0.tar.gz", "blob:demo/extra-2.rpm", "blobs-synced", "version:demo/1.0.0", "recorded", "committed")},
		{"force replace by rename aside", bundleA, pathB, true, true,
			append(common, "blob:demo/demo-pkg-1.0.0.tar.gz", "blob:demo/extra-2.rpm", "blobs-synced", "version-aside:demo/1.0.0", "version:demo/1.0.0", "recorded", "committed")},
	}
	newBundle := map[string][]byte{pathA: bundleA, pathB: bundleB}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			setup := func() *env {
				e := newEnv(t)
				e.sw.noSync = true
				if sc.old != nil {
					e.mustInstall(sc.old)
				}
				return e
			}
			ref := setup()
			oldSnap := snapshot(t, stagingTree(ref.root))
			oldRecords := countRecords(ref.state)
			ref.mustInstall(newBundle[sc.bundle], func(o *InstallOptions) { o.Force = sc.force })
			newSnap := snapshot(t, stagingTree(ref.root))

			for _, point := range sc.points {
				t.Run(point, func(t *testing.T) {
					t.Parallel()
					e := setup()
					runChild(t, childConfig{Bundle: sc.bundle, Root: e.root, State: e.state, Owner: spec, Allowed: allowedPath,
						Force: sc.force, NoExchange: sc.noExchange, CrashAt: point})

					// Right after the kill: CycleCloud never sees a version
					// folder that is half old, half new, nor one whose blobs
					// are missing.
					killed := snapshot(t, stagingTree(e.root))
					vOld, vNew, vNow := versionPart(oldSnap), versionPart(newSnap), versionPart(killed)
					// Without RENAME_EXCHANGE there is one instant between the
					// two renames where the version folder is absent (never
					// mixed); recovery puts the old one back.
					gap := sc.noExchange && strings.HasPrefix(point, "version-aside:") && len(vNow) == 0
					if d1, d2 := diffSnap(vOld, vNow), diffSnap(vNew, vNow); d1 != "" && d2 != "" && !gap {
						t.Errorf("version folder is neither old nor new after the kill:\nvs old:\n%s\nvs new:\n%s", d1, d2)
					}
					st, err := e.status()
					if err != nil {
						t.Fatal(err)
					}
					for _, v := range st.Versions {
						for _, bs := range v.Blobs {
							if bs.State == BlobMissing {
								t.Errorf("after the kill, %s %s misses blob %s", v.Name, v.Version, bs.Name)
							}
						}
					}

					// Recovery (what the next install does first, under the
					// lock) returns to exactly the old state, or keeps the
					// complete new one once the install committed.
					rootDir, err := beneath.OpenDir(e.root)
					if err != nil {
						t.Fatal(err)
					}
					left, _ := os.ReadDir(tmpRoot(e.state))
					var logs strings.Builder
					err = recoverTmp(tmpRoot(e.state), rootDir, slog.New(slog.NewTextHandler(&logs, nil)), durability{off: true})
					rootDir.Close()
					if err != nil {
						t.Fatalf("recover: %v", err)
					}
					// Every temporary folder the kill left is swept, and the
					// log (--verbose) names it.
					if now, _ := os.ReadDir(tmpRoot(e.state)); len(now) != 0 {
						t.Errorf("recovery left %d temporary folders", len(now))
					}
					for _, l := range left {
						if !strings.Contains(logs.String(), filepath.Join(tmpRoot(e.state), l.Name())) {
							t.Errorf("recovery removed %s without saying so", l.Name())
						}
					}
					recovered := snapshot(t, stagingTree(e.root))
					want, wantName, wantRecords := oldSnap, "old", oldRecords
					if point == "committed" {
						want, wantName, wantRecords = newSnap, "new", oldRecords+1
					}
					if d := diffSnap(want, recovered); d != "" {
						t.Errorf("after recovery the staging tree is not the %s state:\n%s", wantName, d)
					}
					if n := countRecords(e.state); n != wantRecords {
						t.Errorf("%d install records after recovery, want %d", n, wantRecords)
					}

					// And the next install succeeds (the dead child's flock
					// is gone) and completes the new state.
					rep := e.mustInstall(newBundle[sc.bundle], func(o *InstallOptions) { o.Force = sc.force; o.LockWait = -1 })
					if d := diffSnap(newSnap, snapshot(t, stagingTree(e.root))); d != "" {
						t.Errorf("after the next install (%s) the tree is not the new state:\n%s", rep.Status, d)
					}
				})
			}
		})
	}
}

// TestNextInstallRecoversInterruptedInstall checks the whole path: a killed
// install leaves a journal, Status reports it, and the next Install undoes
// it before doing its own work.
func TestNextInstallRecoversInterruptedInstall(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("spawns a child installer")
	}
	k, _ := testKeys(t)
	spec, _ := ownerFor(t)
	dir := t.TempDir()
	allowedPath := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(allowedPath, []byte(`admin@example.com `+k.pubLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	before := snapshot(t, stagingTree(e.root))
	bundle := filepath.Join(dir, "b.tar")
	if err := os.WriteFile(bundle, makeBundle(t, []testProject{demoProject(t, "1.1.0", "one")}, k.signer), 0o644); err != nil {
		t.Fatal(err)
	}
	runChild(t, childConfig{Bundle: bundle, Root: e.root, State: e.state, Owner: spec, Allowed: allowedPath, CrashAt: "blob:demo/demo-pkg-1.1.0.tar.gz"})

	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Interrupted) != 1 {
		t.Errorf("status does not report the interrupted install: %+v", st.Interrupted)
	}
	// Installing something else (here: the already staged 1.0.0) first
	// rolls the interrupted one back.
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	assertUnchanged(t, e, before)
	logs := e.logs.String()
	if !strings.Contains(logs, "interrupted") || !strings.Contains(logs, "stale staging lock") {
		t.Errorf("log does not explain the recovery:\n%s", logs)
	}
}

// versionPart keeps the version folders of a snapshot (everything but
// blobs).
func versionPart(s map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range s {
		if strings.HasPrefix(k, filepath.Join("projects", "demo", "1.")) {
			out[k] = v
		}
	}
	return out
}

func countRecords(state string) int {
	es, _ := os.ReadDir(recordsDir(state))
	return len(es)
}
