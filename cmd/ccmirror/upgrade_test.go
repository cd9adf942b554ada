package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/request"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/staging"
)

// The wheel slurm 2.5.0 and 2.7.0 both name; it exists only on release 2.6.1.
const sharedWheel = "cyclecloud_api-8.1.0-py2.py3-none-any.whl"

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"ccmirror"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// mustRunCLI runs the CLI and fails the test unless it exits 0.
func mustRunCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("ccmirror %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// testKeys writes an ed25519 OpenSSH private key and an allowed_signers
// file trusting it for bundles and requests.
func testKeys(t *testing.T) (key, allowed string) {
	t.Helper()
	k := trusttest.NewKey(t, "ops@example.com", manifest.Namespace, request.Namespace)
	return k.Path, k.AllowedSignersFile(t)
}

// fakeCycleServerCmd writes a cycle_server stand-in that knows slurm 2.5.0
// and 2.7.0. With keyValueOnly it fails on -format json, as older
// CycleCloud releases do, and only the default `Key = value` format works.
func fakeCycleServerCmd(t *testing.T, keyValueOnly bool) string {
	t.Helper()
	jsonBranch := `cat <<'EOF'
[
  {"AdType": "Cloud.Project", "AutoUpgrade": false, "Name": "slurm", "ProjectType": "scheduler",
   "Url": "https://github.com/Azure/cyclecloud-slurm/releases/2.5.0", "Version": "2.5.0"},
  {"AdType": "Cloud.Project", "AutoUpgrade": false, "Name": "slurm", "ProjectType": "scheduler",
   "Url": "https://github.com/Azure/cyclecloud-slurm/releases/2.7.0", "Version": "2.7.0"}
]
EOF
  exit 0`
	if keyValueOnly {
		jsonBranch = `echo "Unknown option: -format" >&2; exit 1`
	}
	script := `#!/bin/sh
q='select * from cloud.project'
if [ "$#" = 4 ] && [ "$1" = execute ] && [ "$2" = -format ] && [ "$3" = json ] && [ "$4" = "$q" ]; then
  ` + jsonBranch + `
fi
if [ "$#" = 2 ] && [ "$1" = execute ] && [ "$2" = "$q" ]; then
  cat <<'EOF'
AdType = "Cloud.Project"
AutoUpgrade = false
Name = "slurm"
ProjectType = "scheduler"
Url = "https://github.com/Azure/cyclecloud-slurm/releases/2.5.0"
Version = "2.5.0"

AdType = "Cloud.Project"
AutoUpgrade = false
Name = "slurm"
ProjectType = "scheduler"
Url = "https://github.com/Azure/cyclecloud-slurm/releases/2.7.0"
Version = "2.7.0"
EOF
  exit 0
fi
echo "unexpected arguments: $*" >&2; exit 65
`
	p := filepath.Join(t.TempDir(), "cycle_server")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// readBundle returns a bundle's manifest and its payload paths.
func readBundle(t *testing.T, path string) (*manifest.Manifest, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := manifest.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p.File.Path)
	}
	return r.Manifest(), paths
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// treeListing lists every path under dir (nil when dir does not exist).
func treeListing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUpgradeLoop walks the upgrade runbook: a server with slurm 2.5.0
// staged learns from cycle_server that CycleCloud also knows 2.7.0; plan
// asks for it, fetch --request carries 2.7.0 without the wheel the server
// already holds, install stages it, and status shows both complete.
func TestUpgradeLoop(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	fetchFlags := []string{"--github-url", gh.URL(), "--sign-key", key, "--cache", cache, "--quiet"}

	// Connected side, earlier: the bundle that staged slurm 2.5.0.
	b250 := filepath.Join(work, "slurm-2.5.0.tar")
	mustRunCLI(t, append(append([]string{"fetch"}, fetchFlags...), "-o", b250, "slurm@2.5.0")...)

	for _, tc := range []struct {
		name         string
		keyValueOnly bool
	}{
		{"cycle_server prints JSON", false},
		{"cycle_server knows only the Key = value format", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			cs := fakeCycleServerCmd(t, tc.keyValueOnly)
			install := []string{"install", "--root", root, "--owner", owner, "--allowed-signers", allowed, "--builder", "native"}
			mustRunCLI(t, append(install, b250)...)
			stagedWheel := filepath.Join(staging.ProjectsDir(root), "slurm", "blobs", sharedWheel)
			wheelSum := fileSHA256(t, stagedWheel)

			// Disconnected side: plan.
			reqPath := filepath.Join(dir, "request.json")
			out := mustRunCLI(t, "plan", "--root", root, "--cycle-server", cs, "--sign-key", key, "-o", reqPath)
			if !strings.Contains(out, "slurm 2.7.0") || !strings.Contains(out, "missing") {
				t.Errorf("plan output does not name slurm 2.7.0 as missing:\n%s", out)
			}
			req, err := request.Load(reqPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := request.Item{Name: "slurm", Version: "2.7.0", Repository: "Azure/cyclecloud-slurm", Tag: "2.7.0",
				URL: "https://github.com/Azure/cyclecloud-slurm/releases/2.7.0", Reason: request.ReasonMissing}
			if len(req.Wanted) != 1 || req.Wanted[0] != want {
				t.Fatalf("request wants %+v, want only %+v", req.Wanted, want)
			}
			if b, ok := req.StagedBlob("slurm", sharedWheel); !ok || b.SHA256 != wheelSum {
				t.Fatalf("inventory lacks the staged wheel with its sha256: %+v %v", b, ok)
			}
			if _, err := os.Stat(request.SigPath(reqPath)); err != nil {
				t.Fatalf("plan --sign-key wrote no signature: %v", err)
			}

			// Connected side: fetch exactly what the request asks for, the
			// request's signature checked.
			b270 := filepath.Join(dir, "upgrade.tar")
			mustRunCLI(t, append(append([]string{"fetch"}, fetchFlags...), "--request", reqPath, "--allowed-signers", allowed, "-o", b270)...)
			m, paths := readBundle(t, b270)
			if len(m.Projects) != 1 || m.Projects[0].Name != "slurm" || m.Projects[0].Version != "2.7.0" {
				t.Fatalf("bundle holds %+v, want slurm 2.7.0 only", m.Projects)
			}
			p := m.Projects[0]
			if len(p.Blobs) == 0 {
				t.Error("bundle carries no blobs at all")
			}
			for _, b := range p.Blobs {
				if b.Name == sharedWheel {
					t.Errorf("bundle carries %s, which the server already holds", sharedWheel)
				}
			}
			for _, path := range paths {
				if strings.HasSuffix(path, "/"+sharedWheel) {
					t.Errorf("bundle payload has %s", path)
				}
			}
			var required []string
			for _, b := range p.Required {
				required = append(required, b.Name)
				if b.Name == sharedWheel && b.SHA256 != wheelSum {
					t.Errorf("required %s with sha256 %s, staged %s", b.Name, b.SHA256, wheelSum)
				}
			}
			if len(required) != 1 || required[0] != sharedWheel {
				t.Errorf("required-but-not-carried %v, want [%s]", required, sharedWheel)
			}

			// A server that lacks the wheel refuses the bundle, naming it,
			// and writes nothing.
			empty := filepath.Join(dir, "empty-root")
			if err := os.Mkdir(empty, 0o755); err != nil {
				t.Fatal(err)
			}
			code, _, errs := runCLI(t, "install", "--root", empty, "--owner", owner, "--allowed-signers", allowed, "--builder", "native", b270)
			if code != exitVerify || !strings.Contains(errs, "slurm/blobs/"+sharedWheel) {
				t.Errorf("install on a server without the wheel: exit %d, want %d naming slurm/blobs/%s; stderr: %s", code, exitVerify, sharedWheel, errs)
			}
			if got := treeListing(t, staging.ProjectsDir(empty)); len(got) > 1 {
				t.Errorf("refused install left %d paths behind under %s, e.g. %v", len(got)-1, staging.ProjectsDir(empty), got[1:min(len(got), 4)])
			}

			// Disconnected side: install, then status.
			mustRunCLI(t, append(install, b270)...)
			if got := fileSHA256(t, stagedWheel); got != wheelSum {
				t.Errorf("the staged wheel changed: %s, was %s", got, wheelSum)
			}
			var st staging.StatusReport
			if err := json.Unmarshal([]byte(mustRunCLI(t, "status", "--root", root, "--json")), &st); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, v := range st.Versions {
				got[v.Name+"@"+v.Version] = v.OK
				if !v.OK {
					t.Errorf("status: %s %s not complete: %+v", v.Name, v.Version, v)
				}
			}
			if len(got) != 2 || !got["slurm@2.5.0"] || !got["slurm@2.7.0"] || st.Problems != 0 {
				t.Errorf("status %v (problems %d), want slurm 2.5.0 and 2.7.0 complete", got, st.Problems)
			}

			// Planning again: nothing to fetch.
			again := filepath.Join(dir, "again.json")
			out = mustRunCLI(t, "plan", "--root", root, "--cycle-server", cs, "-o", again)
			if !strings.Contains(out, "nothing to fetch") {
				t.Errorf("second plan does not say nothing to fetch:\n%s", out)
			}
			req, err = request.Load(again, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(req.Wanted) != 0 {
				t.Errorf("second plan wants %+v", req.Wanted)
			}
			code, out, _ = runCLI(t, append(append([]string{"fetch"}, fetchFlags...), "--request", again, "-o", filepath.Join(dir, "none.tar"))...)
			if code != 0 || !strings.Contains(out, "lacks nothing") {
				t.Errorf("fetch of an empty request: exit %d, output %q", code, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "none.tar")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("fetch of an empty request wrote a bundle: %v", err)
			}
		})
	}
}

// TestRequestSignature: a request is signed data; a tampered or unsigned
// request cannot steer fetch when --allowed-signers is given (exit 4,
// nothing fetched), and a signed request read without --allowed-signers is
// fetched with a warning that its signature was not checked.
func TestRequestSignature(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	otherKey, _ := testKeys(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cs := fakeCycleServerCmd(t, false)
	fetchFlags := []string{"--github-url", gh.URL(), "--sign-key", key, "--cache", filepath.Join(dir, "cache"), "--quiet"}

	signed := filepath.Join(dir, "signed.json")
	mustRunCLI(t, "plan", "--root", root, "--cycle-server", cs, "--all-versions", "--sign-key", key, "-o", signed)
	original, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(request.SigPath(signed))
	if err != nil {
		t.Fatal(err)
	}
	byOther := filepath.Join(dir, "other.json")
	mustRunCLI(t, "plan", "--root", root, "--cycle-server", cs, "--sign-key", otherKey, "-o", byOther)
	unsigned := filepath.Join(dir, "unsigned.json")
	mustRunCLI(t, "plan", "--root", root, "--cycle-server", cs, "-o", unsigned)

	write := func(name string, content, signature []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if signature != nil {
			if err := os.WriteFile(request.SigPath(p), signature, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	tampered := write("tampered.json", bytes.Replace(original, []byte(`"tag": "2.7.0"`), []byte(`"tag": "2.7.4"`), 1), sig)
	if b, _ := os.ReadFile(tampered); bytes.Equal(b, original) {
		t.Fatal("tampering changed nothing")
	}

	for _, tc := range []struct {
		name    string
		request string
		allowed bool
		code    int
		stderr  string
	}{
		{"signed, checked", signed, true, exitOK, ""},
		{"signed, not checked", signed, false, exitOK, "NOT checked"},
		{"tampered", tampered, true, exitVerify, "signature"},
		{"signed by an untrusted key", byOther, true, exitVerify, "signature"},
		{"unsigned but signature required", unsigned, true, exitVerify, "must be signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh.ResetCounters()
			out := filepath.Join(t.TempDir(), "bundle.tar")
			args := append(append([]string{"fetch"}, fetchFlags...), "--request", tc.request, "-o", out)
			if tc.allowed {
				args = append(args, "--allowed-signers", allowed)
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d with %q on stderr\nstdout: %s\nstderr: %s", code, tc.code, tc.stderr, stdout, stderr)
			}
			_, err := os.Stat(out)
			if tc.code != exitOK {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a rejected request still produced a bundle (%v)", err)
				}
				if n := len(gh.Requests()); n != 0 {
					t.Errorf("a rejected request still reached GitHub (%d requests)", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m, _ := readBundle(t, out)
			var got []string
			for _, p := range m.Projects {
				got = append(got, p.Name+"@"+p.Version)
			}
			if strings.Join(got, " ") != "slurm@2.5.0 slurm@2.7.0" && strings.Join(got, " ") != "slurm@2.7.0 slurm@2.5.0" {
				t.Errorf("bundle holds %v, want slurm 2.5.0 and 2.7.0 (--all-versions on an empty root)", got)
			}
		})
	}
}

// TestPlanUsage: plan's command line and help.
func TestPlanUsage(t *testing.T) {
	code, out, _ := runCLI(t, "plan", "--help")
	if code != 0 || !strings.Contains(out, "HIGHEST version of each project") || !strings.Contains(out, "--all-versions") {
		t.Errorf("plan --help: exit %d, does not state the highest-version default:\n%s", code, out)
	}
	for _, args := range [][]string{
		{"plan"},                          // no -o
		{"plan", "-o", "x.json", "extra"}, // stray argument
		{"plan", "--no-such-flag"},
	} {
		if code, _, errs := runCLI(t, args...); code != exitUsage {
			t.Errorf("ccmirror %v: exit %d, want %d (%s)", args, code, exitUsage, errs)
		}
	}
	dir := t.TempDir()
	code, _, errs := runCLI(t, "plan", "--root", dir, "-o", filepath.Join(dir, "r.json"))
	if code != exitFailure || !strings.Contains(errs, filepath.Join(dir, "cycle_server")) || strings.Count(errs, "\n") != 1 {
		t.Errorf("plan without a cycle_server: exit %d, stderr %q; want one line naming %s", code, errs, filepath.Join(dir, "cycle_server"))
	}
}

// TestRequestRefs: what fetch takes from a request: one ref per wanted
// release at its exact tag, Have true only for the same project, blob and
// sha256, unresolvable records warned about, a "latest" tag refused.
func TestRequestRefs(t *testing.T) {
	shaA := strings.Repeat("a", 64)
	shaB := strings.Repeat("b", 64)
	base := func() *request.Request {
		return &request.Request{Schema: request.Schema, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Hostname: "cc1", Root: "/opt/cycle_server",
			Wanted: []request.Item{
				{Name: "slurm", Version: "2.7.0", Repository: "Azure/cyclecloud-slurm", Tag: "2.7.0", Reason: request.ReasonMissing},
				{Name: "pbspro", Version: "2.0.25", Repository: "Azure/cyclecloud-pbspro", Tag: "v2.0.25", Reason: request.ReasonIncomplete},
			},
			Unresolvable: []request.Unresolvable{{Name: "mylocal", Version: "1.0.0", URL: "file:///opt/x", Problem: "not a GitHub release URL"}},
			Inventory: []request.StagedProject{{Name: "slurm", Versions: []string{"2.5.0"},
				Blobs: []request.StagedBlob{{Name: sharedWheel, SHA256: shaA, Size: 10}}}},
		}
	}
	tests := []struct {
		name     string
		edit     func(r *request.Request)
		refs     []mirror.Ref
		have     map[[3]string]bool
		logs     []string
		errCode  int
		errMatch string
	}{
		{
			name: "refs, inventory and warnings",
			refs: []mirror.Ref{{Owner: "Azure", Repo: "cyclecloud-slurm", Version: "2.7.0"}, {Owner: "Azure", Repo: "cyclecloud-pbspro", Version: "v2.0.25"}},
			have: map[[3]string]bool{
				{"slurm", sharedWheel, shaA}:  true,
				{"slurm", sharedWheel, shaB}:  false, // staged with other content: carry it
				{"pbspro", sharedWheel, shaA}: false, // another project's blobs folder
				{"slurm", "other.rpm", shaA}:  false,
			},
			logs: []string{"mylocal", "not a GitHub release URL"},
		},
		{
			name: "one release wanted under two names is fetched once",
			edit: func(r *request.Request) {
				r.Wanted = append(r.Wanted, request.Item{Name: "slurm-copy", Version: "2.7.0", Repository: "Azure/cyclecloud-slurm", Tag: "2.7.0", Reason: request.ReasonMissing})
			},
			refs: []mirror.Ref{{Owner: "Azure", Repo: "cyclecloud-slurm", Version: "2.7.0"}, {Owner: "Azure", Repo: "cyclecloud-pbspro", Version: "v2.0.25"}},
		},
		{
			name:     "latest is not an exact tag",
			edit:     func(r *request.Request) { r.Wanted[1].Tag = "Latest" },
			errCode:  exitVerify,
			errMatch: "exact tags",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			if tc.edit != nil {
				tc.edit(r)
			}
			p := filepath.Join(t.TempDir(), "request.json")
			if err := request.Save(p, r, nil); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			opts := mirror.Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}
			refs, err := requestRefs(&fetchOptions{Request: p}, &opts)
			if tc.errMatch != "" {
				if err == nil || exitCode(context.Background(), err) != tc.errCode || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("err %v (exit %d), want exit %d with %q", err, exitCode(context.Background(), err), tc.errCode, tc.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(refs, tc.refs) {
				t.Errorf("refs %+v, want %+v", refs, tc.refs)
			}
			if opts.Have == nil {
				t.Fatal("Have not set")
			}
			for q, want := range tc.have {
				if got := opts.Have(q[0], q[1], q[2]); got != want {
					t.Errorf("Have(%s, %s, %.8s) = %v, want %v", q[0], q[1], q[2], got, want)
				}
			}
			for _, l := range tc.logs {
				if !strings.Contains(logs.String(), l) {
					t.Errorf("log lacks %q:\n%s", l, logs.String())
				}
			}
		})
	}
}
