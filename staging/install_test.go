package staging

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childInstall())
	}
	if os.Getenv(attackerEnv) != "" {
		os.Exit(attackerMain())
	}
	code := m.Run()
	removeTestUsers()
	if keyDir != "" {
		os.RemoveAll(keyDir)
	}
	os.Exit(code)
}

func TestInstallRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	p := demoProject(t, "1.0.0", "one")
	bundle := makeBundle(t, []testProject{p}, k.signer)

	rep := e.mustInstall(bundle)
	if rep.Status != StatusInstalled {
		t.Fatalf("status %q, want %q", rep.Status, StatusInstalled)
	}
	if rep.Signer == nil || rep.Signer.Principal != "admin@example.com" {
		t.Errorf("signer %+v, want admin@example.com", rep.Signer)
	}
	if rep.HeadSHA256 != headSum(t, bundle) {
		t.Errorf("head sha256 %s, want %s", rep.HeadSHA256, headSum(t, bundle))
	}
	uid, gid := uint32(e.owner.UID), uint32(e.owner.GID)

	// Layout and modes, as CycleCloud expects them.
	files := []struct {
		rel  string
		mode os.FileMode
		body string
	}{
		{"demo/1.0.0/project.ini", 0o644, fmt.Sprintf(demoINI, "1.0.0", "1.0.0")},
		{"demo/1.0.0/default/cluster-init/scripts/10.sh", 0o755, "#!/bin/sh\necho one\n"},
		{"demo/1.0.0/default/cluster-init/files/config.txt", 0o644, "config\n"},
		{"demo/1.0.0/x/chef/site-cookbooks/x/recipes/default.rb", 0o644, "log 'x'\n"},
		{"demo/1.0.0/x/cluster-init/scripts/20.sh", 0o755, "#!/bin/sh\necho x\n"},
		{"demo/blobs/demo-pkg-1.0.0.tar.gz", 0o644, string(p.blobs["demo-pkg-1.0.0.tar.gz"])},
		{"demo/blobs/shared-1.0.whl", 0o644, string(p.blobs["shared-1.0.whl"])},
	}
	for _, f := range files {
		t.Run(f.rel, func(t *testing.T) {
			path := e.staged(f.rel)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != f.body {
				t.Errorf("content %q, want %q", b, f.body)
			}
			u, g, mode := statOwner(t, path)
			if mode != f.mode {
				t.Errorf("mode %o, want %o", mode, f.mode)
			}
			if u != uid || g != gid {
				t.Errorf("owner %d:%d, want %d:%d", u, g, uid, gid)
			}
		})
	}
	// Folders ccmirror had to create are owned too.
	for _, d := range []string{"work/staging", "work/staging/projects", "work/staging/projects/demo", "work/staging/projects/demo/blobs", "work/staging/projects/demo/1.0.0", "work/staging/projects/demo/1.0.0/default/cluster-init/scripts"} {
		u, g, _ := statOwner(t, filepath.Join(e.root, d))
		if u != uid || g != gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", d, u, g, uid, gid)
		}
	}
	// Kept: the link inside the version folder. Gone: everything else that
	// is not cluster-init/chef, and links pointing outward.
	if l, err := os.Readlink(e.staged("demo/1.0.0/default/cluster-init/files/inlink")); err != nil || l != "config.txt" {
		t.Errorf("inlink: %q, %v; want config.txt", l, err)
	}
	for _, gone := range []string{"demo/1.0.0/README.md", "demo/1.0.0/default/cluster-init/files/readme", "demo/1.0.0/default/cluster-init/files/passwd",
		"demo/1.0.0/modules", "demo/1.0.0/empty", "demo/1.0.0/util", "demo/1.0.0/specs", "demo/1.0.0/blobs", "demo/1.0.0/source.tar.gz"} {
		if _, err := os.Lstat(e.staged(gone)); err == nil {
			t.Errorf("%s exists; it must not be staged", gone)
		}
	}
	for _, w := range []string{"modules/cyclecloud-scalelib -> /Users/someone/dev/cyclecloud-scalelib: absolute target", "passwd", "hard link", "files/readme"} {
		if !strings.Contains(strings.Join(rep.Warnings, "\n"), w) {
			t.Errorf("no warning mentioning %q in %q", w, rep.Warnings)
		}
	}
	// Private state stays outside staging/projects.
	if rep.Record == "" || !strings.HasPrefix(rep.Record, recordsDir(e.state)) {
		t.Fatalf("record %q not under %s", rep.Record, recordsDir(e.state))
	}
	rb, err := os.ReadFile(rep.Record)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := parseRecord(rb)
	if err != nil {
		t.Fatal(err)
	}
	if rec.HeadSHA256 != headSum(t, bundle) || rec.Signer == nil || len(rec.Projects) != 1 || len(rec.Projects[0].Files) == 0 {
		t.Errorf("record incomplete: %s", rb)
	}
	if es, _ := os.ReadDir(tmpRoot(e.state)); len(es) != 0 {
		t.Errorf("temporary folder left: %v", es)
	}

	// Reinstalling is a no-op that says so.
	before := snapshot(t, stagingTree(e.root))
	again := e.mustInstall(bundle)
	if again.Status != StatusAlreadyInstalled {
		t.Errorf("reinstall status %q, want %q", again.Status, StatusAlreadyInstalled)
	}
	assertUnchanged(t, e, before)
	var text bytes.Buffer
	if err := again.WriteText(&text); err != nil || !strings.Contains(text.String(), "already installed") {
		t.Errorf("reinstall text does not say already installed: %q %v", text.String(), err)
	}
	if recs, _, _ := readRecords(e.state); len(recs) != 1 {
		t.Errorf("%d install records after a no-op reinstall, want 1", len(recs))
	}

	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Versions) != 1 || !st.Versions[0].OK || st.Versions[0].InstalledBy == nil || st.Versions[0].InstalledBy.HeadSHA256 != headSum(t, bundle) {
		t.Errorf("status after install: %+v", st)
	}
}

func TestInstallDefaultOwnerIsCycleServer(t *testing.T) {
	t.Parallel()
	needTestUsers(t)
	e := newEnv(t)
	k, _ := testKeys(t)
	e.opts.Owner = ""
	rep := e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	want, err := ResolveOwner("cycle_server:cycle_server")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Owner.UID != want.UID || rep.Owner.GID != want.GID {
		t.Errorf("report owner %+v, want %+v", rep.Owner, want)
	}
	for _, rel := range []string{"", "demo", "demo/blobs/shared-1.0.whl", "demo/1.0.0/default/cluster-init/scripts/10.sh"} {
		u, g, _ := statOwner(t, e.staged(rel))
		if int(u) != want.UID || int(g) != want.GID {
			t.Errorf("%s: owner %d:%d, want cycle_server %d:%d", rel, u, g, want.UID, want.GID)
		}
	}
}

func TestInstallNeverChownsWhatItDidNotCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	// An existing projects folder and a user blob, owned by someone else.
	other := os.Getuid()
	if os.Geteuid() == 0 {
		other = 4242
	}
	blobs := e.staged("demo/blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	userBlob := filepath.Join(blobs, "user-blob.tgz")
	if err := os.WriteFile(userBlob, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stagingTree(e.root), ProjectsDir(e.root), e.staged("demo"), blobs, userBlob} {
		if err := os.Lchown(p, other, other); err != nil {
			t.Fatal(err)
		}
	}
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	for _, p := range []string{ProjectsDir(e.root), e.staged("demo"), blobs, userBlob} {
		if u, g, _ := statOwner(t, p); int(u) != other || int(g) != other {
			t.Errorf("%s: owner changed to %d:%d; ccmirror did not create it", p, u, g)
		}
	}
	if _, _, mode := statOwner(t, userBlob); mode != 0o600 {
		t.Errorf("user blob mode changed to %o", mode)
	}
}

// tamper is one way to break a bundle.
type tamper struct {
	name   string
	mutate func(t *testing.T, good []byte) []byte
	opts   func(*InstallOptions)
}

func flipIn(name string, at func(body []byte) int) func(t *testing.T, good []byte) []byte {
	return func(t *testing.T, good []byte) []byte {
		es := readTar(t, good)
		for _, e := range es {
			if e.hdr.Name == name {
				i := at(e.body)
				e.body[i] ^= 0x01
				return writeTar(t, es)
			}
		}
		t.Fatalf("no entry %s", name)
		return nil
	}
}

func editTar(f func(es []tarEntry) []tarEntry) func(t *testing.T, good []byte) []byte {
	return func(t *testing.T, good []byte) []byte {
		return writeTar(t, f(readTar(t, good)))
	}
}

func tamperCases(t *testing.T) []tamper {
	k, stranger := testKeys(t)
	v2 := demoProject(t, "2.0.0", "two")
	blob := manifest.BlobPath("demo", "demo-pkg-2.0.0.tar.gz")
	resign := func(signer manifest.Signer) func(t *testing.T, _ []byte) []byte {
		return func(t *testing.T, _ []byte) []byte { return makeBundle(t, []testProject{v2}, signer) }
	}
	withSource := func(extra srcEntry) func(t *testing.T, _ []byte) []byte {
		return func(t *testing.T, _ []byte) []byte {
			p := v2
			p.src = makeSource(t, "cyclecloud-demo-2.0.0", append(demoSource("2.0.0", "two"), extra))
			return makeBundle(t, []testProject{p}, k.signer)
		}
	}
	return []tamper{
		{name: "byte flipped in a blob", mutate: flipIn(blob, func(b []byte) int { return len(b) / 2 })},
		{name: "byte flipped in the source archive", mutate: flipIn(manifest.SourcePath("demo", "2.0.0"), func(b []byte) int { return len(b) - 10 })},
		{name: "byte flipped in manifest.json", mutate: flipIn(manifest.ManifestName, func(b []byte) int { return bytes.Index(b, []byte("ccmirror-test")) })},
		{name: "byte flipped in SHA256SUMS", mutate: flipIn(manifest.SumsName, func(b []byte) int { return 3 })},
		{name: "byte flipped in the signature", mutate: flipIn(manifest.SignatureName, func(b []byte) int { return 60 })},
		{name: "truncated", mutate: func(t *testing.T, good []byte) []byte { return good[:len(good)*3/4] }},
		{name: "truncated inside the head", mutate: func(t *testing.T, good []byte) []byte { return good[:700] }},
		{name: "extra entry", mutate: editTar(func(es []tarEntry) []tarEntry {
			h := *es[len(es)-1].hdr
			h.Name = "projects/demo/blobs/zz-extra"
			return append(es, tarEntry{&h, []byte("extra")})
		})},
		{name: "missing entry", mutate: editTar(func(es []tarEntry) []tarEntry {
			var out []tarEntry
			for _, e := range es {
				if e.hdr.Name != blob {
					out = append(out, e)
				}
			}
			return out
		})},
		{name: "../ path", mutate: editTar(func(es []tarEntry) []tarEntry {
			h := *es[len(es)-1].hdr
			h.Name = "projects/demo/../../../etc/evil"
			return append(es[:len(es)-1], tarEntry{&h, es[len(es)-1].body})
		})},
		{name: "absolute path", mutate: editTar(func(es []tarEntry) []tarEntry {
			h := *es[len(es)-1].hdr
			h.Name = "/tmp/ccmirror-evil"
			return append(es, tarEntry{&h, []byte("x")})
		})},
		{name: "symlink entry", mutate: editTar(func(es []tarEntry) []tarEntry {
			h := &tar.Header{Name: "projects/demo/blobs/zz-link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Mode: 0o777}
			return append(es, tarEntry{h, nil})
		})},
		{name: "unsigned", mutate: resign(nil)},
		{name: "signer not in allowed_signers", mutate: resign(stranger.signer)},
		{name: "key outside its validity window", mutate: resign(k.signer), opts: func(o *InstallOptions) {
			o.Verify.Allowed = allowed(t, `admin@example.com namespaces="ccmirror",valid-before="20200101" `+k.pubLine+"\n")
		}},
		{name: "key not yet valid", mutate: resign(k.signer), opts: func(o *InstallOptions) {
			o.Verify.Allowed = allowed(t, `admin@example.com valid-after="20990101" `+k.pubLine+"\n")
		}},
		{name: "namespace not allowed for the key", mutate: resign(k.signer), opts: func(o *InstallOptions) {
			o.Verify.Allowed = allowed(t, `admin@example.com namespaces="file" `+k.pubLine+"\n")
		}},
		{name: "wrong namespace in the signature", mutate: resign(nsSigner{k, "file"})},
		{name: "no allowed_signers", mutate: resign(k.signer), opts: func(o *InstallOptions) { o.Verify.Allowed = nil }},
		{name: "source with a ../ path", mutate: withSource(srcEntry{name: "../evil", mode: 0o644, body: "x"})},
		{name: "source with an absolute path", mutate: func(t *testing.T, _ []byte) []byte {
			p := v2
			src := makeSource(t, "cyclecloud-demo-2.0.0", demoSource("2.0.0", "two"))
			// re-pack with an absolute member name
			p.src = rewriteSource(t, src, func(es []tarEntry) []tarEntry {
				h := &tar.Header{Name: "/etc/evil", Typeflag: tar.TypeReg, Mode: 0o644}
				return append(es, tarEntry{h, []byte("x")})
			})
			return makeBundle(t, []testProject{p}, k.signer)
		}},
		{name: "source without project.ini", mutate: func(t *testing.T, _ []byte) []byte {
			p := v2
			p.src = makeSource(t, "cyclecloud-demo-2.0.0", demoSource("2.0.0", "two")[1:])
			return makeBundle(t, []testProject{p}, k.signer)
		}},
		{name: "project.ini names a blob nobody has", mutate: func(t *testing.T, _ []byte) []byte {
			p := v2
			delete(p.blobs, "demo-pkg-2.0.0.tar.gz")
			return makeBundle(t, []testProject{p}, k.signer)
		}},
		{name: "required blob not staged", mutate: func(t *testing.T, _ []byte) []byte {
			p := v2
			p.required = []manifest.Blob{{Name: "big-runtime.rpm", Size: 10, SHA256: sum([]byte("0123456789"))}}
			return makeBundle(t, []testProject{p}, k.signer)
		}},
	}
}

func rewriteSource(t *testing.T, src []byte, f func([]tarEntry) []tarEntry) []byte {
	t.Helper()
	zr, err := gzipReader(src)
	if err != nil {
		t.Fatal(err)
	}
	es := f(readTar(t, zr))
	return gzipBytes(t, writeTar(t, es))
}

func TestInstallRejectsTamperedBundles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	// Something staged already, so "unchanged" means something.
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	good := makeBundle(t, []testProject{demoProject(t, "2.0.0", "two")}, k.signer)
	for _, tc := range tamperCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.mutate(t, append([]byte(nil), good...))
			before := snapshot(t, stagingTree(e.root))
			opts := []func(*InstallOptions){}
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			rep, err := e.install(bad, opts...)
			if !errors.Is(err, manifest.ErrVerify) {
				t.Fatalf("install: %v, want ErrVerify", err)
			}
			if rep == nil || rep.Status != StatusFailed || rep.Error == "" {
				t.Errorf("report %+v, want status failed with the error", rep)
			}
			assertUnchanged(t, e, before)

			// verify says the same, except for problems only an install
			// can see (unpacking, staged state).
			switch tc.name {
			case "source with a ../ path", "source with an absolute path", "source without project.ini",
				"project.ini names a blob nobody has", "required blob not staged":
				return
			}
			vo := VerifyOptions{Allowed: trustedAllowed(t)}
			if tc.opts != nil {
				o := InstallOptions{Verify: vo}
				tc.opts(&o)
				vo = o.Verify
			}
			if _, err := Verify(context.Background(), bytes.NewReader(bad), vo); !errors.Is(err, manifest.ErrVerify) {
				t.Errorf("verify: %v, want ErrVerify", err)
			}
			// The payload checks catch it, not the whole-bundle hash.
			vo.SkipBundleSHA256 = true
			if _, err := Verify(context.Background(), bytes.NewReader(bad), vo); !errors.Is(err, manifest.ErrVerify) {
				t.Errorf("verify without the bundle hash: %v, want ErrVerify", err)
			}
		})
	}
	// The good bundle still installs afterwards.
	e.mustInstall(good)
}

func TestInstallInsecureSkipSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, nil)
	if _, err := e.install(bundle); !errors.Is(err, manifest.ErrVerify) {
		t.Fatalf("unsigned install without --insecure-skip-signature: %v, want ErrVerify", err)
	}
	rep := e.mustInstall(bundle, func(o *InstallOptions) { o.Verify = VerifyOptions{InsecureSkipSignature: true} })
	if !rep.Insecure || rep.Signer != nil {
		t.Errorf("report insecure=%v signer=%v", rep.Insecure, rep.Signer)
	}
	if !strings.Contains(e.logs.String(), "SIGNATURE NOT CHECKED") {
		t.Errorf("no loud warning in the log:\n%s", e.logs.String())
	}
	// Hashes are still checked.
	bad := flipIn(manifest.BlobPath("demo", "shared-1.0.whl"), func(b []byte) int { return 5 })(t, makeBundle(t, []testProject{demoProject(t, "2.0.0", "x")}, nil))
	if _, err := e.install(bad, func(o *InstallOptions) { o.Verify = VerifyOptions{InsecureSkipSignature: true} }); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("insecure install of a corrupt bundle: %v, want ErrVerify", err)
	}
}

func TestInstallConflictAndForce(t *testing.T) {
	t.Parallel()
	for _, exchange := range []bool{true, false} {
		t.Run(fmt.Sprintf("exchange=%v", exchange), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.sw.noExchange = !exchange
			k, _ := testKeys(t)
			e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))

			// Same version, different script; a blob with the same name but
			// different content; one file less.
			p := demoProject(t, "1.0.0", "changed")
			src := demoSource("1.0.0", "changed")
			var kept []srcEntry
			for _, s := range src {
				if s.name != "specs/x/cluster-init/scripts/20.sh" {
					kept = append(kept, s)
				}
			}
			p.src = makeSource(t, "cyclecloud-demo-1.0.0", kept)
			changed := makeBundle(t, []testProject{p}, k.signer)

			before := snapshot(t, stagingTree(e.root))
			rep, err := e.install(changed)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("install over differing content: %v, want ErrConflict", err)
			}
			if !strings.Contains(err.Error(), "demo/blobs/demo-pkg-1.0.0.tar.gz") || !strings.Contains(err.Error(), "--force") {
				t.Errorf("conflict error does not name the blob and --force: %v", err)
			}
			if rep.Status != StatusConflict {
				t.Errorf("status %q", rep.Status)
			}
			assertUnchanged(t, e, before)

			// The dry run shows every conflict, blob and files.
			plan, err := e.install(changed, dryRun)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("dry run: %v, want ErrConflict", err)
			}
			assertUnchanged(t, e, before)
			want := map[string]Action{
				"blob demo-pkg-1.0.0.tar.gz":              ActionConflict,
				"blob shared-1.0.whl":                     ActionSkip,
				"file default/cluster-init/scripts/10.sh": ActionConflict,
				"file x/cluster-init/scripts/20.sh":       ActionConflict,
				"file project.ini":                        ActionSkip,
			}
			assertPlan(t, plan, want)
			if plan.Projects[0].Action != ActionConflict {
				t.Errorf("version action %q, want conflict", plan.Projects[0].Action)
			}

			// --force replaces atomically.
			rep = e.mustInstall(changed, force)
			if rep.Status != StatusInstalled {
				t.Fatalf("force: status %q", rep.Status)
			}
			b, _ := os.ReadFile(e.staged("demo/1.0.0/default/cluster-init/scripts/10.sh"))
			if !strings.Contains(string(b), "changed") {
				t.Errorf("script not replaced: %q", b)
			}
			if _, err := os.Lstat(e.staged("demo/1.0.0/x/cluster-init/scripts/20.sh")); err == nil {
				t.Errorf("file removed from the bundle is still staged")
			}
			b, _ = os.ReadFile(e.staged("demo/blobs/demo-pkg-1.0.0.tar.gz"))
			if sum(b) != sum(p.blobs["demo-pkg-1.0.0.tar.gz"]) {
				t.Errorf("blob not replaced")
			}
			u, g, mode := statOwner(t, e.staged("demo/blobs/demo-pkg-1.0.0.tar.gz"))
			if int(u) != e.owner.UID || int(g) != e.owner.GID || mode != 0o644 {
				t.Errorf("replaced blob %d:%d %o", u, g, mode)
			}
			if es, _ := os.ReadDir(tmpRoot(e.state)); len(es) != 0 {
				t.Errorf("temporary folder left: %v", es)
			}
			st, err := e.status()
			if err != nil || st.Problems != 0 {
				t.Errorf("status after force: %+v %v", st, err)
			}
			if again := e.mustInstall(changed); again.Status != StatusAlreadyInstalled {
				t.Errorf("reinstall after force: %q", again.Status)
			}
		})
	}
}

func assertPlan(t *testing.T, rep *InstallReport, want map[string]Action) {
	t.Helper()
	got := map[string]Action{}
	for _, p := range rep.Projects {
		for _, b := range p.Blobs {
			got["blob "+b.Path] = b.Action
		}
		for _, f := range p.Files {
			got[f.Type+" "+f.Path] = f.Action
		}
	}
	for k, a := range want {
		if got[k] != a {
			t.Errorf("plan %s: %q, want %q (plan %v)", k, got[k], a, got)
		}
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)
	rep, err := e.install(bundle, dryRun)
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(e.root); len(es) != 0 {
		t.Errorf("dry run created %v under the root", es)
	}
	if rep.Status != StatusDryRun || rep.Record != "" {
		t.Errorf("status %q record %q", rep.Status, rep.Record)
	}
	assertPlan(t, rep, map[string]Action{
		"blob shared-1.0.whl":                       ActionAdd,
		"file default/cluster-init/scripts/10.sh":   ActionAdd,
		"dir default":                               ActionAdd,
		"symlink default/cluster-init/files/inlink": ActionAdd,
	})
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"add      blob    shared-1.0.whl", "add      file    default/cluster-init/scripts/10.sh", "dry run: nothing changed"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("dry run text lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back["status"] != "dry-run" {
		t.Errorf("JSON plan: %v %v", back["status"], err)
	}

	// After a real install, the dry run of the next version shows the
	// shared blob as skipped.
	e.mustInstall(bundle)
	before := snapshot(t, stagingTree(e.root))
	rep, err = e.install(makeBundle(t, []testProject{demoProject(t, "1.1.0", "one")}, k.signer), dryRun)
	if err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, e, before)
	assertPlan(t, rep, map[string]Action{"blob shared-1.0.whl": ActionSkip, "blob demo-pkg-1.1.0.tar.gz": ActionAdd})
}

func TestSharedBlobStoredOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	v1 := snapshot(t, e.staged("demo/1.0.0"))
	rep := e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.1.0", "one")}, k.signer))
	assertPlan(t, rep, map[string]Action{"blob shared-1.0.whl": ActionSkip, "blob demo-pkg-1.1.0.tar.gz": ActionAdd})
	es, err := os.ReadDir(e.staged("demo/blobs"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range es {
		names = append(names, d.Name())
	}
	if strings.Join(names, ",") != "demo-pkg-1.0.0.tar.gz,demo-pkg-1.1.0.tar.gz,shared-1.0.whl" {
		t.Errorf("blobs %v", names)
	}
	if d := diffSnap(v1, snapshot(t, e.staged("demo/1.0.0"))); d != "" {
		t.Errorf("installing 1.1.0 changed 1.0.0:\n%s", d)
	}
	// One bundle with two versions sharing the blob.
	e2 := newEnv(t)
	rep = e2.mustInstall(makeBundle(t, []testProject{demoProject(t, "2.0.0", "a"), demoProject(t, "2.1.0", "b")}, k.signer))
	if rep.Counts[ActionAdd] != 5 { // 3 blobs, 2 versions
		t.Errorf("counts %v, want 5 adds", rep.Counts)
	}
	st, err := e2.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Versions) != 2 || st.Problems != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestRequiredBlobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	shared := filler("shared", 3000)
	p := demoProject(t, "1.1.0", "one")
	delete(p.blobs, "shared-1.0.whl")
	p.required = []manifest.Blob{{Name: "shared-1.0.whl", Size: int64(len(shared)), SHA256: sum(shared)}}
	bundle := makeBundle(t, []testProject{p}, k.signer)

	before := snapshot(t, stagingTree(e.root))
	_, err := e.install(bundle)
	if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "demo/blobs/shared-1.0.whl") {
		t.Fatalf("required blob missing: %v, want ErrVerify naming it", err)
	}
	assertUnchanged(t, e, before)

	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	rep := e.mustInstall(bundle)
	assertPlan(t, rep, map[string]Action{"blob shared-1.0.whl": ActionSkip, "blob demo-pkg-1.1.0.tar.gz": ActionAdd})
	st, err := e.status()
	if err != nil || st.Problems != 0 || len(st.Versions) != 2 {
		t.Errorf("status %+v %v", st, err)
	}
}

func TestConcurrentInstalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)

	locked := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e.sw.hook = func(p string) {
		if p == "locked" {
			once.Do(func() { close(locked); <-release })
		}
	}

	var wg sync.WaitGroup
	var firstErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, firstErr = e.install(bundle)
	}()
	<-locked
	// A lower bound only (the install must honour its 300 ms wait); load
	// can make it later, never earlier.
	start := time.Now()
	rep, err := e.install(bundle, func(o *InstallOptions) { o.LockWait = 300 * time.Millisecond })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second install: %v, want ErrConflict", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("second install gave up after %v, want it to wait ~300ms", waited)
	}
	if !strings.Contains(e.logs.String(), "waiting for the staging lock") {
		t.Errorf("the waiting install did not say it waits:\n%s", e.logs.String())
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("lock error does not name the holder's pid: %v", err)
	}
	if rep.Status != StatusConflict {
		t.Errorf("status %q", rep.Status)
	}
	// A waiting install that gets the lock in time proceeds.
	var secondErr error
	var secondRep *InstallReport
	wg.Add(1)
	go func() {
		defer wg.Done()
		secondRep, secondErr = e.install(bundle, func(o *InstallOptions) { o.LockWait = 20 * time.Second })
	}()
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if firstErr != nil || secondErr != nil {
		t.Fatalf("installs: %v / %v", firstErr, secondErr)
	}
	if secondRep.Status != StatusAlreadyInstalled {
		t.Errorf("second install %q, want already installed", secondRep.Status)
	}
	st, err := e.status()
	if err != nil || st.Problems != 0 || len(st.Versions) != 1 {
		t.Errorf("status %+v %v", st, err)
	}
}

func TestStaleLockRecovered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k, _ := testKeys(t)
	// A lock file left by a process that is gone (pid of a finished child).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1)")
	}
	dead := cmd.Process.Pid
	if err := os.MkdirAll(e.state, 0o755); err != nil {
		t.Fatal(err)
	}
	// The note in the format earlier versions wrote (bundle=).
	note := fmt.Sprintf("pid=%d\ntime=%s\nbundle=old.tar\n", dead, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano))
	if err := os.WriteFile(lockPath(e.state), []byte(note), 0o644); err != nil {
		t.Fatal(err)
	}
	// LockWait -1 fails at once on a held lock: a stale one must not count.
	e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer), func(o *InstallOptions) { o.LockWait = -1 })
	logs := e.logs.String()
	if !strings.Contains(logs, "stale staging lock") || !strings.Contains(logs, "kernel released") || !strings.Contains(logs, "pid "+strconv.Itoa(dead)) || !strings.Contains(logs, "old.tar") {
		t.Errorf("log does not report the recovered stale lock:\n%s", logs)
	}
	if b, _ := os.ReadFile(lockPath(e.state)); len(b) != 0 {
		t.Errorf("lock file not emptied on release: %q", b)
	}
}

func TestPreflight(t *testing.T) {
	k, _ := testKeys(t)
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)
	cases := []struct {
		name string
		opts func(*testing.T, *InstallOptions)
		want string
	}{
		{"unknown user", func(_ *testing.T, o *InstallOptions) { o.Owner = "ccm_no_such_user:ccm_no_such_user" }, "user ccm_no_such_user does not exist"},
		{"unknown group", func(_ *testing.T, o *InstallOptions) { o.Owner = "0:ccm_no_such_group" }, "group ccm_no_such_group does not exist"},
		{"bad owner", func(_ *testing.T, o *InstallOptions) { o.Owner = "a:b:c" }, "want USER:GROUP"},
		{"missing root", func(_ *testing.T, o *InstallOptions) { o.Root = filepath.Join(o.Root, "nope") }, "does not exist"},
		{"bad builder", func(_ *testing.T, o *InstallOptions) { o.Builder = "make" }, "want auto, cyclecloud or native"},
		{"cyclecloud builder without the CLI", func(t *testing.T, o *InstallOptions) { o.Builder = BuilderCycleCloud; t.Setenv("PATH", t.TempDir()) }, "not on PATH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.install(bundle, func(o *InstallOptions) { tc.opts(t, o) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("preflight error is not one line: %q", err)
			}
			if _, err := os.Lstat(stagingTree(e.root)); err == nil {
				t.Errorf("staging tree created despite a failed preflight")
			}
		})
	}
	t.Run("free space", func(t *testing.T) {
		e := newEnv(t)
		huge := hugeBundle(t)
		_, err := e.install(huge, func(o *InstallOptions) { o.Verify = VerifyOptions{InsecureSkipSignature: true} })
		if err == nil || !strings.Contains(err.Error(), "not enough free space") {
			t.Fatalf("error %v, want not enough free space", err)
		}
		if _, err := os.Lstat(stagingTree(e.root)); err == nil {
			t.Errorf("staging tree created despite a failed preflight")
		}
	})
}

// hugeBundle is a bundle head whose manifest declares a 1 PiB blob; only
// its head is valid, which is all preflight reads.
func hugeBundle(t *testing.T) []byte {
	src := makeSource(t, "cyclecloud-demo-1.0.0", demoSource("1.0.0", "one"))
	m := &manifest.Manifest{Schema: manifest.Schema, Created: time.Now().UTC(), Tool: "t", Projects: []manifest.Project{{
		Name: "demo", Version: "1.0.0", Tag: "1.0.0",
		Source: manifest.File{Path: manifest.SourcePath("demo", "1.0.0"), Size: int64(len(src)), SHA256: sum(src)},
		Blobs:  []manifest.Blob{{Name: "huge.bin", Path: manifest.BlobPath("demo", "huge.bin"), Size: 1 << 50, SHA256: strings.Repeat("0", 64)}},
	}}}
	mb, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sums := manifest.FormatSums([]manifest.Sum{{Path: manifest.ManifestName, SHA256: sum(mb)},
		{Path: m.Projects[0].Source.Path, SHA256: sum(src)}, {Path: m.Projects[0].Blobs[0].Path, SHA256: strings.Repeat("0", 64)}})
	return writeTar(t, []tarEntry{
		{&tar.Header{Name: manifest.SumsName, Typeflag: tar.TypeReg, Mode: 0o644}, sums},
		{&tar.Header{Name: manifest.ManifestName, Typeflag: tar.TypeReg, Mode: 0o644}, mb},
		{&tar.Header{Name: m.Projects[0].Source.Path, Typeflag: tar.TypeReg, Mode: 0o644}, src},
	})
}

func TestCycleCloudBuilder(t *testing.T) {
	e := newEnv(t)
	k, _ := testKeys(t)
	bin := t.TempDir()
	// A stand-in for the CycleCloud CLI: checks the blobs are there, then
	// lays out build/<name>/ like `cyclecloud project build`.
	script := `#!/bin/sh
set -e
[ "$1 $2" = "project build" ] || { echo "usage" >&2; exit 2; }
name=$(sed -n 's/^name *= *//p' project.ini | head -n 1)
for b in demo-pkg-1.0.0.tar.gz shared-1.0.whl; do [ -f "blobs/$b" ] || { echo "missing blob $b" >&2; exit 3; }; done
mkdir -p "build/$name/blobs"
cp project.ini "build/$name/"
for s in specs/*/; do
  s=${s%/}; spec=${s#specs/}
  for sub in cluster-init chef; do
    if [ -d "$s/$sub" ]; then mkdir -p "build/$name/$spec"; cp -a "$s/$sub" "build/$name/$spec/"; fi
  done
done
cp blobs/* "build/$name/blobs/"
chmod 0777 "build/$name"; chmod 0666 "build/$name/project.ini"
echo "built $name"
`
	if err := os.WriteFile(filepath.Join(bin, "cyclecloud"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	rep := e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer), func(o *InstallOptions) { o.Builder = BuilderAuto })
	if rep.Builder != BuilderCycleCloud {
		t.Errorf("builder %q, want cyclecloud (the CLI is on PATH)", rep.Builder)
	}
	if _, _, mode := statOwner(t, e.staged("demo/1.0.0/default/cluster-init/scripts/10.sh")); mode != 0o755 {
		t.Errorf("script mode %o", mode)
	}
	// Whatever modes the build leaves, the policy decides.
	if _, _, mode := statOwner(t, e.staged("demo/1.0.0/project.ini")); mode != 0o644 {
		t.Errorf("project.ini mode %o after a build that left 0666", mode)
	}
	if _, _, mode := statOwner(t, e.staged("demo/1.0.0")); mode != 0o755 {
		t.Errorf("version folder mode %o after a build that left 0777", mode)
	}
	if _, err := os.Lstat(e.staged("demo/1.0.0/blobs")); err == nil {
		t.Errorf("build output's blobs/ copied into the version folder")
	}
	if _, err := os.Stat(e.staged("demo/blobs/shared-1.0.whl")); err != nil {
		t.Errorf("blob not staged: %v", err)
	}
	// A failing build leaves nothing.
	if err := os.WriteFile(filepath.Join(bin, "cyclecloud"), []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, stagingTree(e.root))
	_, err := e.install(makeBundle(t, []testProject{demoProject(t, "1.1.0", "one")}, k.signer), func(o *InstallOptions) { o.Builder = BuilderCycleCloud })
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("failing build: %v, want its output in the error", err)
	}
	assertUnchanged(t, e, before)
	// A build that prints without end, or hangs (leaving a grandchild),
	// is killed with its process group; nothing is staged.
	for _, tc := range []struct{ name, script, want string }{
		{"floods", "#!/bin/sh\nexec cat /dev/zero\n", "printed more than the output cap of 64 MiB"},
		{"hangs", "#!/bin/sh\necho building\nsleep 1000 &\necho $! > " + filepath.Join(bin, "grandchild") + "\nwait\n", "timed out after 500ms: building"},
	} {
		if err := os.WriteFile(filepath.Join(bin, "cyclecloud"), []byte(tc.script), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := e.install(makeBundle(t, []testProject{demoProject(t, "1.1.0", "one")}, k.signer), func(o *InstallOptions) {
			o.Builder, o.BuildTimeout = BuilderCycleCloud, 500*time.Millisecond
			if tc.name == "floods" {
				o.BuildTimeout = time.Hour
			}
		})
		if err == nil || !strings.Contains(err.Error(), "cyclecloud project build: "+tc.want) {
			t.Fatalf("build that %s: %v, want %q", tc.name, err, tc.want)
		}
		assertUnchanged(t, e, before)
	}
	if b, err := os.ReadFile(filepath.Join(bin, "grandchild")); err != nil {
		t.Fatalf("the hanging build did not start its grandchild: %v", err)
	} else if st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat"); err == nil && !strings.Contains(string(st), ") Z") {
		t.Errorf("the build's grandchild %s still runs", strings.TrimSpace(string(b)))
	}
}

// TestInstallFailureUndoes cancels installs at several points, including
// mid-placement (a blob already replaced): every failure leaves the staging
// tree exactly as it was and no temporary folder.
func TestInstallFailureUndoes(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	old := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)
	p := demoProject(t, "1.0.0", "two")
	p.blobs["sub/extra.rpm"] = filler("extra", 100)
	changed := makeBundle(t, []testProject{p}, k.signer)
	for _, point := range []string{"payload:projects/demo/1.0.0/source.tar.gz", "built:demo", "blob:demo/demo-pkg-1.0.0.tar.gz", "blob:demo/sub/extra.rpm", "blobs-synced"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.mustInstall(old)
			before := snapshot(t, stagingTree(e.root))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := e.opts
			o.Force = true
			_, err := install(ctx, bytes.NewReader(changed), "b", o, switches{hook: func(p string) {
				if p == point {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
			assertUnchanged(t, e, before)
			if n := countRecords(e.state); n != 1 {
				t.Errorf("%d records, want 1", n)
			}
			// And the same install then succeeds, blob sub-folder included.
			e.mustInstall(changed, force)
			if u, g, _ := statOwner(t, e.staged("demo/blobs/sub")); int(u) != e.owner.UID || int(g) != e.owner.GID {
				t.Errorf("blob sub-folder owner %d:%d", u, g)
			}
		})
	}
}

// syscallKill is split out so the child can use it.
var syscallKill = func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }

// TestInstallRefusesSymlinkedStagingFolders: a folder on the way to a
// staged path that is a symlink (planted by whoever can write the staging
// tree) must not make the install write or chown where it points.
func TestInstallRefusesSymlinkedStagingFolders(t *testing.T) {
	t.Parallel()
	for _, link := range []string{"demo", "demo/blobs"} {
		t.Run(link, func(t *testing.T) {
			t.Parallel()
			k, _ := testKeys(t)
			e := newEnv(t)
			elsewhere := t.TempDir()
			if err := os.MkdirAll(filepath.Dir(e.staged(link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, e.staged(link)); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, elsewhere)
			_, err := e.install(makeBundle(t, []testProject{demoProject(t, "1.0.0", "a")}, k.signer))
			if err == nil {
				t.Errorf("install through a symlinked %s succeeded", link)
			}
			if d := diffSnap(before, snapshot(t, elsewhere)); d != "" {
				t.Errorf("install wrote through the symlinked %s:\n%s", link, d)
			}
		})
	}
}
