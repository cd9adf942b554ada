package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ccmirror/ccmirror/manifest/index"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/staging/update"
	"github.com/ccmirror/ccmirror/transport/blob"
	"github.com/ccmirror/ccmirror/transport/blob/azuritetest"
)

// updateWorld is the whole loop of issue 12: the connected side's sync job
// (against the fake GitHub) writing and optionally publishing signed
// bundles and index, and a CycleCloud server root with a fake cycle_server.
type updateWorld struct {
	t       *testing.T
	dir     string
	gh      *githubtest.Server
	key     string
	allowed string
	out     string // sync's output folder
	publish string // sync's publish container URL, "" for none
	root    string
	cycle   string
	owner   string
}

func newUpdateWorld(t *testing.T, publish string, blobSize int64) *updateWorld {
	t.Helper()
	gh, err := githubtest.NewServer(githubtest.Options{BlobSize: blobSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	key, allowed := testKeys(t)
	dir := t.TempDir()
	w := &updateWorld{t: t, dir: dir, gh: gh, key: key, allowed: allowed, out: filepath.Join(dir, "out"), publish: publish,
		root: filepath.Join(dir, "root"), cycle: filepath.Join(dir, "cycle_server"), owner: fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())}
	if err := os.MkdirAll(w.root, 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// sync runs `ccmirror sync` with slurm at these versions.
func (w *updateWorld) sync(versions ...string) {
	w.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "github_url: %s\nsign_key: %s\noutput: %s\ncache: %s\n", w.gh.URL(), w.key, w.out, filepath.Join(w.dir, "cache"))
	if w.publish != "" {
		fmt.Fprintf(&b, "publish: %s\n", w.publish)
	}
	fmt.Fprintf(&b, "projects:\n  - ref: slurm\n    versions: [%s]\n", `"`+strings.Join(versions, `", "`)+`"`)
	cfg := filepath.Join(w.dir, "mirror.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		w.t.Fatal(err)
	}
	mustRunCLI(w.t, "sync", "--config", cfg, "--quiet")
}

// knows makes the fake cycle_server report these project versions
// ("name@version", the Url naming Azure/cyclecloud-NAME's release).
func (w *updateWorld) knows(versions ...string) {
	w.t.Helper()
	var recs []string
	for _, v := range versions {
		name, version, _ := strings.Cut(v, "@")
		recs = append(recs, fmt.Sprintf(`{"AdType": "Cloud.Project", "Name": %q, "Version": %q, "Url": "https://github.com/Azure/cyclecloud-%s/releases/%s"}`, name, version, name, version))
	}
	script := "#!/bin/sh\nif [ \"$1\" = execute ] && [ \"$2\" = -format ]; then\ncat <<'EOF'\n[" + strings.Join(recs, ",\n") + "]\nEOF\nexit 0\nfi\necho \"unexpected arguments: $*\" >&2; exit 65\n"
	if err := os.WriteFile(w.cycle, []byte(script), 0o755); err != nil {
		w.t.Fatal(err)
	}
}

// server are the flags that point update at the test server.
func (w *updateWorld) server() []string {
	return []string{"--root", w.root, "--cycle-server", w.cycle, "--owner", w.owner, "--builder", "native"}
}

// update runs `ccmirror update --json` from source and returns the exit
// code, the report and stderr.
func (w *updateWorld) update(from string, extra ...string) (int, *update.Report, string) {
	w.t.Helper()
	args := append([]string{"update", "--from", from, "--allowed-signers", w.allowed, "--json"}, w.server()...)
	code, stdout, stderr := runCLI(w.t, append(args, extra...)...)
	var rep update.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		w.t.Fatalf("update --json printed no report (exit %d): %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	return code, &rep, stderr
}

func (w *updateWorld) staged(version string) bool {
	_, err := os.Stat(filepath.Join(staging.ProjectsDir(w.root), "slurm", version, "project.ini"))
	return err == nil
}

// stagingState records path, content, mode, owner and mtime of every entry
// of the staging tree.
func stagingState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(staging.ProjectsDir(root), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sum := ""
		if st.Mode().IsRegular() {
			sum = fileSHA256(t, p)
		}
		sys := st.Sys().(*syscall.Stat_t)
		out[p] = fmt.Sprintf("%s %v %d:%d %d", sum, st.Mode(), sys.Uid, sys.Gid, st.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func reportItems(its []update.Item) []string {
	out := []string{}
	for _, it := range its {
		out = append(out, it.Project+"@"+it.Version)
	}
	return out
}

// checkUpdateLoop is the scenario both sources must pass. put replaces an
// object of the source (index.json, index.json.sig); remove deletes one.
func checkUpdateLoop(t *testing.T, w *updateWorld, from string, put func(name string, data []byte), remove func(name string)) {
	// Connected side, earlier: only slurm 2.5.0; keep that index (the
	// "stale media" replayed later).
	w.sync("2.5.0")
	oldIndex, _ := os.ReadFile(filepath.Join(w.out, index.Name))
	oldSig, _ := os.ReadFile(filepath.Join(w.out, index.SigName))
	w.sync("2.5.0", "2.7.0", "3.0.12")
	cur, _ := os.ReadFile(filepath.Join(w.out, index.Name))
	curSig, _ := os.ReadFile(filepath.Join(w.out, index.SigName))
	w.knows("slurm@2.5.0", "slurm@2.7.0")

	// The highest version CycleCloud knows is installed; 2.5.0 (older) and
	// 3.0.12 (unknown to CycleCloud) are not.
	code, rep, stderr := w.update(from)
	if code != exitOK {
		t.Fatalf("update: exit %d: %s", code, stderr)
	}
	if got := reportItems(rep.Install); !slices.Equal(got, []string{"slurm@2.7.0"}) || rep.Install[0].Action != update.ActionInstalled {
		t.Errorf("installed %v, want slurm@2.7.0", got)
	}
	if !w.staged("2.7.0") || w.staged("2.5.0") || w.staged("3.0.12") {
		t.Errorf("staged 2.5.0=%v 2.7.0=%v 3.0.12=%v, want only 2.7.0", w.staged("2.5.0"), w.staged("2.7.0"), w.staged("3.0.12"))
	}
	seq := rep.Index.Sequence
	if seq < 2 || !rep.Index.Recorded {
		t.Errorf("index %+v, want a sequence above the first sync's and recorded", rep.Index)
	}

	// Second run: idle, nothing downloaded, the staging tree as it was.
	before := stagingState(t, w.root)
	code, out, stderr := runCLI(t, append([]string{"update", "--from", from, "--allowed-signers", w.allowed}, w.server()...)...)
	if code != exitOK || !strings.Contains(out, "up to date: 1 project version") {
		t.Errorf("second update: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, rep, _ = w.update(from)
	if code != exitOK || rep.Status != update.StatusUpToDate || rep.Downloaded != 0 || len(rep.Install) != 0 {
		t.Errorf("idle update: exit %d status %s downloaded %d install %v", code, rep.Status, rep.Downloaded, reportItems(rep.Install))
	}
	if after := stagingState(t, w.root); !mapsEqual(before, after) {
		t.Error("an idle update changed the staging tree")
	}

	// --dry-run with --all-versions: the plan lists 2.5.0 to install and
	// 2.7.0 staged, and nothing changes.
	code, out, stderr = runCLI(t, append([]string{"update", "--from", from, "--allowed-signers", w.allowed, "--all-versions", "--dry-run"}, w.server()...)...)
	if code != exitOK || !strings.Contains(out, "install:") || !strings.Contains(out, "slurm 2.5.0") || !strings.Contains(out, "already staged:") {
		t.Errorf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	if w.staged("2.5.0") || !mapsEqual(before, stagingState(t, w.root)) {
		t.Error("a dry run changed the staging tree")
	}

	// A wanted version the index lacks: listed, exit 3, the rest still
	// fine.
	w.knows("slurm@2.5.0", "slurm@2.7.0", "pbspro@2.0.25")
	code, rep, stderr = w.update(from)
	if code != exitUpstream || !slices.Equal(reportItems(rep.NotOffered), []string{"pbspro@2.0.25"}) || !strings.Contains(stderr, "pbspro 2.0.25") {
		t.Errorf("missing version: exit %d not offered %v stderr %q", code, reportItems(rep.NotOffered), stderr)
	}
	w.knows("slurm@2.5.0", "slurm@2.7.0")

	// The stale index replayed: validly signed, lower sequence: exit 4
	// naming both numbers, staging unchanged.
	put(index.Name, oldIndex)
	put(index.SigName, oldSig)
	code, _, stderr = runCLI(t, append([]string{"update", "--from", from, "--allowed-signers", w.allowed, "--all-versions"}, w.server()...)...)
	if code != exitVerify || !strings.Contains(stderr, "sequence 1 ") || !strings.Contains(stderr, fmt.Sprintf("sequence %d,", seq)) {
		t.Errorf("rolled-back index: exit %d, stderr %q; want 4 naming 1 and %d", code, stderr, seq)
	}
	if w.staged("2.5.0") || !mapsEqual(before, stagingState(t, w.root)) {
		t.Error("a rolled-back index changed the staging tree")
	}

	// Tampered: the current index with a byte changed.
	put(index.Name, []byte(strings.Replace(string(cur), "slurm-3.0.12.tar", "slurm-3.0.13.tar", 1)))
	put(index.SigName, curSig)
	code, _, stderr = runCLI(t, append([]string{"update", "--from", from, "--allowed-signers", w.allowed}, w.server()...)...)
	if code != exitVerify || !strings.Contains(stderr, "bad signature") {
		t.Errorf("tampered index: exit %d, stderr %q", code, stderr)
	}
	// Unsigned.
	put(index.Name, cur)
	remove(index.SigName)
	code, _, stderr = runCLI(t, append([]string{"update", "--from", from, "--allowed-signers", w.allowed}, w.server()...)...)
	if code != exitVerify || !strings.Contains(stderr, "unsigned") {
		t.Errorf("unsigned index: exit %d, stderr %q", code, stderr)
	}
	if !mapsEqual(before, stagingState(t, w.root)) {
		t.Error("a refused index changed the staging tree")
	}
	put(index.SigName, curSig)
	if code, _, stderr := w.update(from); code != exitOK {
		t.Errorf("restored index: exit %d: %s", code, stderr)
	}
}

// azuriteContainer returns the URL of a fresh container in the real
// Azurite, with the account key as the only credential.
func azuriteContainer(t *testing.T, prefix string) string {
	t.Helper()
	base := azuritetest.URL(t)
	azureKeyOnly(t)
	return base + "/" + prefix + "-" + randomHex(5)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestUpdateFromFolder: the one-way variant, the sync output folder as it
// is (copied to media or through a diode).
func TestUpdateFromFolder(t *testing.T) {
	w := newUpdateWorld(t, "", 0)
	// The scenario reads sync's output folder directly.
	checkUpdateLoop(t, w, w.out, func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(w.out, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}, func(name string) { os.Remove(filepath.Join(w.out, name)) })

	// A copy of the output folder, as carried on media, works the same.
	media := filepath.Join(w.dir, "media")
	if err := os.CopyFS(media, os.DirFS(w.out)); err != nil {
		t.Fatal(err)
	}
	w.knows("slurm@2.5.0", "slurm@2.7.0")
	code, rep, stderr := w.update(media, "--all-versions")
	if code != exitOK || !slices.Equal(reportItems(rep.Install), []string{"slurm@2.5.0"}) || !w.staged("2.5.0") {
		t.Errorf("update from the carried folder: exit %d install %v: %s", code, reportItems(rep.Install), stderr)
	}
}

// TestUpdateFromAzure: the sync job publishes to a real Azurite container
// and the server updates from it; an interrupted bundle download resumes
// at the offset it reached.
func TestUpdateFromAzure(t *testing.T) {
	container := azuriteContainer(t, "upd")
	w := newUpdateWorld(t, container, 0)
	ctx := context.Background()
	put := func(name string, data []byte) {
		if err := blob.Put(ctx, container+"/"+name, data); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(name string) {
		// An empty signature blob is what a half-finished upload looks
		// like; update treats it as unsigned too.
		put(name, nil)
	}
	checkUpdateLoop(t, w, container, put, remove)
}

// TestUpdateResumesDownload interrupts a bundle download from Azurite
// midway and checks the next `ccmirror update` resumes it at the offset the
// partial file reached, downloading only the rest.
func TestUpdateResumesDownload(t *testing.T) {
	container := azuriteContainer(t, "res")
	w := newUpdateWorld(t, container, 1<<20)
	w.sync("2.7.0")
	w.knows("slurm@2.7.0")
	data, _ := os.ReadFile(filepath.Join(w.out, index.Name))
	ix, err := index.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	size := ix.Bundles[0].Size

	// The first run stops once a third of the bundle has arrived (as a
	// dropped connection or a killed timer run would).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := newBlobSource(container, blob.Options{MaxRetries: -1, Progress: func(done, total int64) {
		if done >= size/3 {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := loadTrust(w.allowed, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = update.Run(ctx, update.Options{Source: src, Allowed: allowed.Allowed, Root: w.root, CyclePath: w.cycle, Owner: w.owner, Builder: "native"})
	if !errors.Is(err, context.Canceled) || w.staged("2.7.0") {
		t.Fatalf("interrupted update: %v (staged %v)", err, w.staged("2.7.0"))
	}
	partials, _ := filepath.Glob(filepath.Join(staging.StateDir(w.root), "update", "downloads", "*.partial"))
	if len(partials) != 1 {
		t.Fatalf("partial downloads %v, want one", partials)
	}
	st, err := os.Stat(partials[0])
	if err != nil || st.Size() < size/3 || st.Size() >= size {
		t.Fatalf("partial file %v %v: want between %d and %d bytes", st, err, size/3, size)
	}
	have := st.Size()

	code, rep, stderr := w.update(container)
	if code != exitOK || !w.staged("2.7.0") {
		t.Fatalf("resumed update: exit %d: %s", code, stderr)
	}
	tr := rep.Install[0].Transfer
	if tr == nil || tr.ResumedFrom != have || tr.Downloaded != size-have || rep.Downloaded != size-have {
		t.Errorf("transfer %+v, total %d; want resumed from %d and %d more bytes", tr, rep.Downloaded, have, size-have)
	}
	if left, _ := os.ReadDir(filepath.Join(staging.StateDir(w.root), "update", "downloads")); len(left) != 0 {
		t.Errorf("downloads left after install: %v", left)
	}
}

// TestREADMEUpdateCommands runs every `ccmirror update` command the README
// shows (the runbook, the systemd unit, the one-way variant), with the
// README's paths replaced by the test's.
func TestREADMEUpdateCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := regexp.MustCompile(`(?m)(?:^|ExecStart=\S*?|\s)(ccmirror update --[^\n`+"`"+`]*)`).FindAllStringSubmatch(string(readme), -1)
	if len(cmds) < 3 {
		t.Fatalf("README shows %d ccmirror update commands, want the runbook's", len(cmds))
	}
	container := azuriteContainer(t, "readme")
	w := newUpdateWorld(t, container, 0)
	w.sync("2.7.0")
	w.knows("slurm@2.7.0")
	media := filepath.Join(w.dir, "media", "ccmirror")
	if err := os.CopyFS(media, os.DirFS(w.out)); err != nil {
		t.Fatal(err)
	}
	repl := strings.NewReplacer(
		"https://ACCOUNT.blob.core.windows.net/ccmirror", container,
		"/media/ccmirror", media,
		"/etc/ccmirror/allowed_signers", w.allowed,
	)
	for _, m := range cmds {
		line := strings.TrimSpace(m[1])
		t.Logf("README: %s", line)
		args := strings.Fields(repl.Replace(line))[1:]
		code, stdout, stderr := runCLI(t, append(args, w.server()...)...)
		if code != exitOK {
			t.Errorf("README command %q: exit %d\nstdout: %s\nstderr: %s", line, code, stdout, stderr)
		}
		if strings.Contains(line, "--json") {
			var rep update.Report
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Index == nil {
				t.Errorf("README command %q printed no report: %v", line, err)
			}
		}
	}
	if !w.staged("2.7.0") {
		t.Error("the README's commands staged nothing")
	}
}
