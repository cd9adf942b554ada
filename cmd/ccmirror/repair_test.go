package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/manifest/request"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/staging"
)

// TestRepairIncompleteVersion walks the upgrade runbook for a version
// whose project.ini was deleted: plan names it incomplete and records its
// folder's print, fetch --request carries that print in the bundle, and
// install replaces the folder without --force while it is as plan saw it.
// A folder changed after plan still needs --force (exit 5).
func TestRepairIncompleteVersion(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	b250 := filepath.Join(work, "slurm-2.5.0.tar")
	mustRunCLI(t, "fetch", "--github-url", gh.URL(), "--sign-key", key, "--cache", cache, "--quiet", "-o", b250, "slurm@2.5.0")

	for _, tc := range []struct {
		name    string
		change  bool // edit a file of the folder after plan
		wantRun int
	}{
		{"folder as plan saw it", false, exitOK},
		{"folder changed after plan", true, exitConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			install := []string{"install", "--root", root, "--owner", owner, "--allowed-signers", allowed, "--builder", "native"}
			mustRunCLI(t, append(install, b250)...)
			vdir := filepath.Join(staging.ProjectsDir(root), "slurm", "2.5.0")
			ini := filepath.Join(vdir, "project.ini")
			if err := os.Remove(ini); err != nil {
				t.Fatal(err)
			}

			reqPath := filepath.Join(dir, "request.json")
			mustRunCLI(t, "plan", "--root", root, "--cycle-server", fakeCycleServerCmd(t, false), "--all-versions", "--sign-key", key, "-o", reqPath)
			req, err := request.Load(reqPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			var item *request.Item
			for i := range req.Wanted {
				if req.Wanted[i].Name == "slurm" && req.Wanted[i].Version == "2.5.0" {
					item = &req.Wanted[i]
				}
			}
			if item == nil || item.Reason != request.ReasonIncomplete || !strings.HasPrefix(item.Staged, "sha256:") {
				t.Fatalf("request wants %+v; want slurm 2.5.0 incomplete with the folder's print", req.Wanted)
			}

			bundle := filepath.Join(dir, "repair.tar")
			mustRunCLI(t, "fetch", "--github-url", gh.URL(), "--sign-key", key, "--cache", cache, "--quiet",
				"--allowed-signers", allowed, "--request", reqPath, "-o", bundle)
			m, _ := readBundle(t, bundle)
			found := false
			for _, p := range m.Projects {
				if p.Name == "slurm" && p.Version == "2.5.0" {
					found = p.Replaces == item.Staged
				}
			}
			if !found {
				t.Fatalf("the bundle does not carry the print of slurm 2.5.0's folder: %+v", m.Projects)
			}

			if tc.change {
				edited := ""
				filepath.WalkDir(vdir, func(p string, d fs.DirEntry, err error) error {
					if err == nil && edited == "" && d.Type().IsRegular() {
						edited = p
					}
					return err
				})
				f, err := os.OpenFile(edited, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("# an admin's edit\n")
				f.Close()
			}
			code, _, stderr := runCLI(t, append(install, bundle)...)
			if code != tc.wantRun {
				t.Fatalf("install of the repair bundle: exit %d, want %d: %s", code, tc.wantRun, stderr)
			}
			if tc.change {
				if !strings.Contains(stderr, "--force") || !strings.Contains(stderr, "changed since plan") {
					t.Errorf("refused install says %q; want it to name --force and the change since plan", stderr)
				}
				if _, err := os.Stat(ini); err == nil {
					t.Error("the refused install restored project.ini")
				}
				mustRunCLI(t, append(append(install, "--force"), bundle)...)
			}
			if _, err := os.Stat(ini); err != nil {
				t.Errorf("project.ini not restored: %v", err)
			}
			mustRunCLI(t, "status", "--root", root)
		})
	}
}
