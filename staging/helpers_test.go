package staging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
)

// ---- keys and trust ----

type testKey struct {
	signer  *trust.Signer
	ssh     ssh.Signer
	pubLine string // authorized_keys form, no newline
}

var (
	keyOnce  sync.Once
	keyCache [2]*testKey
	keyDir   string
)

// testKeys returns two ed25519 keys (made once per test binary): the
// trusted one and a stranger.
func testKeys(t testing.TB) (trusted, stranger *testKey) {
	t.Helper()
	keyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ccm-staging-keys-")
		if err != nil {
			panic(err)
		}
		keyDir = dir
		for i := range keyCache {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				panic(err)
			}
			blk, err := ssh.MarshalPrivateKey(priv, "test key")
			if err != nil {
				panic(err)
			}
			p := filepath.Join(dir, "key"+strconv.Itoa(i))
			if err := os.WriteFile(p, pem.EncodeToMemory(blk), 0o600); err != nil {
				panic(err)
			}
			s, err := trust.LoadSigner(p, nil)
			if err != nil {
				panic(err)
			}
			ss, err := ssh.NewSignerFromKey(priv)
			if err != nil {
				panic(err)
			}
			keyCache[i] = &testKey{signer: s, ssh: ss, pubLine: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ss.PublicKey())))}
		}
	})
	if keyCache[0] == nil {
		t.Fatal("test keys could not be made")
	}
	return keyCache[0], keyCache[1]
}

// allowed parses an allowed_signers text.
func allowed(t testing.TB, text string) *trust.AllowedSigners {
	t.Helper()
	a, err := trust.ParseAllowedSigners(strings.NewReader(text), "allowed_signers")
	if err != nil {
		t.Fatalf("allowed_signers: %v", err)
	}
	return a
}

// trustedAllowed trusts the first test key as admin@example.com.
func trustedAllowed(t testing.TB) *trust.AllowedSigners {
	k, _ := testKeys(t)
	return allowed(t, `admin@example.com namespaces="ccmirror" `+k.pubLine+"\n")
}

// nsSigner signs like trust.Signer but in another namespace.
type nsSigner struct {
	key *testKey
	ns  string
}

func (s nsSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := sshsig.Sign(bytes.NewReader(msg), s.key.ssh, sshsig.HashSHA512, s.ns)
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}

// ---- synthetic sources and bundles ----

type srcEntry struct {
	name string // relative to the top folder
	mode int64
	body string
	link string // symlink target
	typ  byte   // 0: regular (or symlink when link != "")
}

const demoINI = `[project]
name = demo
label = Demo
type = scheduler
version = %s

[blobs]
Files = demo-pkg-%s.tar.gz, shared-1.0.whl

[spec default]
run_list = role[demo_default]

[spec x]
run_list = role[demo_x]

[config demo.thing]
Required = True
    [[[[list Config.Entries]]]]
    Name := demo
`

// demoSource is the standard synthetic project tree; script varies the
// content of scripts/10.sh so two sources can differ.
func demoSource(version, script string) []srcEntry {
	return []srcEntry{
		{name: "project.ini", mode: 0o644, body: fmt.Sprintf(demoINI, version, version)},
		{name: "README.md", mode: 0o644, body: "# demo\n"},
		{name: "specs/default/cluster-init/scripts/10.sh", mode: 0o755, body: "#!/bin/sh\necho " + script + "\n"},
		{name: "specs/default/cluster-init/files/config.txt", mode: 0o644, body: "config\n"},
		{name: "specs/default/cluster-init/files/inlink", link: "config.txt"},
		{name: "specs/default/cluster-init/files/readme", link: "../../../../README.md"},
		{name: "specs/default/cluster-init/files/passwd", link: "../../../../../../etc/passwd"},
		{name: "specs/x/chef/site-cookbooks/x/recipes/default.rb", mode: 0o644, body: "log 'x'\n"},
		{name: "specs/x/cluster-init/scripts/20.sh", mode: 0o755, body: "#!/bin/sh\necho x\n"},
		{name: "specs/empty/.gitkeep", mode: 0o644},
		{name: "modules/cyclecloud-scalelib", link: "/Users/someone/dev/cyclecloud-scalelib"},
		{name: "util/hard", typ: tar.TypeLink, link: "cyclecloud-demo-x/README.md"},
	}
}

// makeSource builds a GitHub-style tag archive: pax global header with the
// commit, top folder, then the entries.
func makeSource(t testing.TB, top string, entries []srcEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": strings.Repeat("ab", 20)}}))
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/", Mode: 0o775}))
	dirs := map[string]bool{}
	for _, e := range entries {
		// parent folders first, as git archive writes them
		parts := strings.Split(e.name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if !dirs[d] {
				dirs[d] = true
				must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/" + d + "/", Mode: 0o775}))
			}
		}
		h := &tar.Header{Name: top + "/" + e.name, Mode: e.mode, Typeflag: e.typ}
		switch {
		case e.typ == tar.TypeLink:
			h.Linkname = e.link
		case e.typ != 0 && e.typ != tar.TypeReg:
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		must(tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			must(err)
		}
	}
	must(tw.Close())
	must(gz.Close())
	return buf.Bytes()
}

type testProject struct {
	name, version, tag string
	src                []byte
	blobs              map[string][]byte
	required           []manifest.Blob
}

// demoProject is project demo at version with the standard tree; its blobs
// are demo-pkg-<version>.tar.gz and the shared shared-1.0.whl.
func demoProject(t testing.TB, version, script string) testProject {
	return testProject{
		name: "demo", version: version, tag: version,
		src: makeSource(t, "cyclecloud-demo-"+version, demoSource(version, script)),
		blobs: map[string][]byte{
			"demo-pkg-" + version + ".tar.gz": filler("pkg-"+version+script, 5000),
			"shared-1.0.whl":                  filler("shared", 3000),
		},
	}
}

func filler(seed string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s-%d\n", seed, i)
	}
	return b.Bytes()[:n]
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// makeBundle writes a bundle with manifest.WriteBundle; signer nil means
// unsigned.
func makeBundle(t testing.TB, projects []testProject, signer manifest.Signer) []byte {
	t.Helper()
	m := &manifest.Manifest{Schema: manifest.Schema, Created: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), Tool: "ccmirror-test"}
	content := map[string][]byte{}
	for _, p := range projects {
		mp := manifest.Project{Name: p.name, Version: p.version, Repository: "Azure/cyclecloud-" + p.name, Tag: p.tag,
			Commit:     strings.Repeat("ab", 20),
			ReleaseURL: "https://github.com/Azure/cyclecloud-" + p.name + "/releases/" + p.tag,
			Source:     manifest.File{Path: manifest.SourcePath(p.name, p.version), Size: int64(len(p.src)), SHA256: sum(p.src)},
			Required:   p.required,
		}
		content[mp.Source.Path] = p.src
		names := make([]string, 0, len(p.blobs))
		for n := range p.blobs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			b := p.blobs[n]
			bp := manifest.BlobPath(p.name, n)
			mp.Blobs = append(mp.Blobs, manifest.Blob{Name: n, Path: bp, Size: int64(len(b)), SHA256: sum(b), Origin: "release", Release: p.tag})
			content[bp] = b
		}
		m.Projects = append(m.Projects, mp)
	}
	var entries []manifest.Entry
	for _, f := range m.Files() {
		b := content[f.Path]
		entries = append(entries, manifest.Entry{Path: f.Path, Size: f.Size, SHA256: f.SHA256,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
	}
	var out bytes.Buffer
	if err := manifest.WriteBundle(context.Background(), &out, m, entries, signer); err != nil {
		t.Fatalf("WriteBundle: %v", err)
	}
	return out.Bytes()
}

// tarEntry is one raw entry of a bundle, for tampering.
type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

func readTar(t testing.TB, b []byte) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []tarEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, body})
	}
}

func writeTar(t testing.TB, es []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := *e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ---- owners ----

const testUser = "ccm_test_cs"

var (
	ownerOnce    sync.Once
	ownerErr     error
	createdUsers []string // users to delete after the tests
	createdGrps  []string
)

// needTestUsers creates (once) the ccm_test_cs user and group and, if
// absent, cycle_server:cycle_server; TestMain removes what it created.
func needTestUsers(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown to a cycle_server user")
	}
	ownerOnce.Do(func() {
		for _, name := range []string{testUser, "cycle_server"} {
			if _, err := user.LookupGroup(name); err != nil {
				if out, err := exec.Command("groupadd", name).CombinedOutput(); err != nil {
					ownerErr = fmt.Errorf("groupadd %s: %v: %s", name, err, out)
					return
				}
				createdGrps = append(createdGrps, name)
			}
			if _, err := user.Lookup(name); err != nil {
				if out, err := exec.Command("useradd", "-M", "-N", "-g", name, "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
					ownerErr = fmt.Errorf("useradd %s: %v: %s", name, err, out)
					return
				}
				createdUsers = append(createdUsers, name)
			}
		}
	})
	if ownerErr != nil {
		t.Skipf("cannot create test users: %v", ownerErr)
	}
}

func removeTestUsers() {
	for _, u := range createdUsers {
		_ = exec.Command("userdel", u).Run()
	}
	for _, g := range createdGrps {
		_ = exec.Command("groupdel", g).Run()
	}
}

// ownerFor returns the owner spec tests install with: ccm_test_cs when
// running as root (so chown really changes something), else the current
// user.
func ownerFor(t testing.TB) (string, Owner) {
	t.Helper()
	spec := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	if os.Geteuid() == 0 {
		needTestUsers(t)
		spec = testUser + ":" + testUser
	}
	o, err := ResolveOwner(spec)
	if err != nil {
		t.Fatal(err)
	}
	return spec, o
}

// ---- environment ----

type env struct {
	t     testing.TB
	root  string
	state string // the state folder every install of this env uses
	owner Owner
	opts  InstallOptions
	logs  *syncBuffer
	sw    switches // test switches every install of this env uses
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	spec, o := ownerFor(t)
	root := t.TempDir()
	state := filepath.Join(t.TempDir(), "state")
	logs := &syncBuffer{}
	return &env{t: t, root: root, state: state, owner: o, logs: logs, opts: InstallOptions{
		Root: root, StateDir: state, Owner: spec, Builder: BuilderNative, LockWait: 2 * time.Second,
		Verify: VerifyOptions{Allowed: trustedAllowed(t)},
		Log:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}}
}

func (e *env) install(bundle []byte, mod ...func(*InstallOptions)) (*InstallReport, error) {
	o := e.opts
	for _, f := range mod {
		f(&o)
	}
	return install(context.Background(), bytes.NewReader(bundle), "test.tar", o, e.sw)
}

func (e *env) mustInstall(bundle []byte, mod ...func(*InstallOptions)) *InstallReport {
	e.t.Helper()
	rep, err := e.install(bundle, mod...)
	if err != nil {
		e.t.Fatalf("install: %v\nlogs:\n%s", err, e.logs.String())
	}
	return rep
}

// status is Status of the env's root and state folder.
func (e *env) status() (*StatusReport, error) {
	return StatusWith(StatusOptions{Root: e.root, StateDir: e.state})
}

func (e *env) staged(rel string) string {
	return filepath.Join(ProjectsDir(e.root), filepath.FromSlash(rel))
}

func force(o *InstallOptions)  { o.Force = true }
func dryRun(o *InstallOptions) { o.DryRun = true }

// snapshot lists a tree with type, mode, owner and content hash of every
// path, for byte-for-byte comparisons.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("%o %d:%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + sum(b)
		case syscall.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stagingTree(root string) string { return filepath.Join(root, "work", "staging") }

func diffSnap(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "- "+k+" "+v)
		} else if v != w {
			out = append(out, "~ "+k+" "+v+" => "+w)
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "+ "+k+" "+v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// assertUnchanged fails when the staging tree differs from before, or a
// temporary folder was left behind.
func assertUnchanged(t testing.TB, e *env, before map[string]string) {
	t.Helper()
	if d := diffSnap(before, snapshot(t, stagingTree(e.root))); d != "" {
		t.Errorf("staging tree changed:\n%s", d)
	}
	if es, _ := os.ReadDir(tmpRoot(e.state)); len(es) > 0 {
		t.Errorf("temporary folders left behind: %v", es)
	}
}

func statOwner(t testing.TB, p string) (uint32, uint32, os.FileMode) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid, os.FileMode(st.Mode & 0o7777)
}

// headSum is the sha256 of a bundle's SHA256SUMS: what install records
// name the bundle by.
func headSum(t testing.TB, bundle []byte) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(bundle))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("bundle has no SHA256SUMS: %v", err)
		}
		if h.Name == "SHA256SUMS" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return sum(b)
		}
	}
}
