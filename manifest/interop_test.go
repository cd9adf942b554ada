package manifest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH: skipping the interoperability check with system tools", tool)
		}
	}
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("%s %s printed on stderr: %s", name, strings.Join(args, " "), stderr.String())
	}
	return stdout.String()
}

// interopBundle has a path too long for USTAR (PAX), a sub-folder blob, an
// executable and an empty file.
func interopBundle() *testBundle {
	long := strings.Repeat("l", 150) + "/" + strings.Repeat("n", 140) + ".rpm"
	tb := newTestBundle("demo", "1.0.0", []byte("pretend this is a gzip tar\n"), map[string][]byte{
		"a.rpm":     bytes.Repeat([]byte("a"), 3000),
		"sub/b.rpm": []byte("bee\n"),
		"run.sh":    []byte("#!/bin/sh\necho hi\n"),
		"empty.txt": {},
		long:        []byte("long name\n"),
	})
	tb.modes[BlobPath("demo", "run.sh")] = 0o755
	return tb
}

// Anyone can check a bundle with tar and sha256sum alone (SPEC "Bundle
// format v1").
func TestSystemTarAndSha256sumCheckBundle(t *testing.T) {
	needTools(t, "tar", "sha256sum", "sh", "diff", "cut", "grep")
	tb := interopBundle()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "demo-1.0.0.tar")
	if err := os.WriteFile(bundle, tb.write(t, &fakeSigner{sig: fakeSig}), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{SumsName, SignatureName, ManifestName}
	for _, f := range tb.m.Files() {
		want = append(want, f.Path)
	}
	if got := strings.Fields(run(t, dir, "tar", "-tf", bundle)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tar -tf lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	x := filepath.Join(dir, "x")
	if err := os.Mkdir(x, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, x, "tar", "-xf", bundle)
	out := run(t, x, "sha256sum", "--strict", "-c", SumsName)
	if n := strings.Count(out, ": OK\n"); n != len(want)-2 {
		t.Errorf("sha256sum -c checked %d files, want %d:\n%s", n, len(want)-2, out)
	}
	// The listing checks FORMAT.md documents pass on a good bundle...
	docCheck := `set -e
test -z "$(tar -tvf "$1" | grep -v '^-')"
{ echo SHA256SUMS; echo SHA256SUMS.sig; cut -c67- SHA256SUMS; } > ../want
tar -tf "$1" | diff ../want -`
	run(t, x, "sh", "-c", docCheck, "sh", bundle)
	// ...and catch an entry SHA256SUMS does not list.
	es := rawEntries(t, tb.write(t, &fakeSigner{sig: fakeSig}))
	extra := filepath.Join(dir, "extra.tar")
	if err := os.WriteFile(extra, buildTar(t, append(es, regular("projects/demo/blobs/zz", []byte("x")))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", "cd "+x+" && "+docCheck, "sh", extra).CombinedOutput(); err == nil {
		t.Errorf("documented listing check accepted an unlisted entry: %s", out)
	}

	sig, err := os.ReadFile(filepath.Join(x, SignatureName))
	if err != nil || !bytes.Equal(sig, fakeSig) {
		t.Errorf("extracted %s = %q, %v", SignatureName, sig, err)
	}
	fi, err := os.Stat(filepath.Join(x, filepath.FromSlash(BlobPath("demo", "run.sh"))))
	if err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("run.sh extracted without its executable bit: %v %v", fi, err)
	}

	// A tampered file is caught by sha256sum too.
	if err := os.WriteFile(filepath.Join(x, filepath.FromSlash(BlobPath("demo", "a.rpm"))), []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sha256sum", "--strict", "--quiet", "-c", SumsName)
	cmd.Dir = x
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("sha256sum -c accepted a tampered blob: %s", out)
	}
}

// A bundle put together by hand with GNU tar from extracted files, in the
// documented order, is a valid bundle: the format is plain tar.
func TestReaderAcceptsGNUTarBundles(t *testing.T) {
	needTools(t, "tar")
	tb := interopBundle()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "orig.tar")
	if err := os.WriteFile(bundle, tb.write(t, &fakeSigner{sig: fakeSig}), 0o644); err != nil {
		t.Fatal(err)
	}
	x := filepath.Join(dir, "x")
	if err := os.Mkdir(x, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, x, "tar", "-xf", bundle)
	names := []string{SumsName, SignatureName, ManifestName}
	for _, f := range tb.m.Files() {
		names = append(names, f.Path)
	}
	for _, format := range []string{"gnu", "posix", "pax"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(dir, format+".tar")
			run(t, x, "tar", append([]string{"--format=" + format, "--owner=root", "--group=root", "-cf", out}, names...)...)
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := readAll(f); err != nil {
				t.Fatalf("bundle made by GNU tar --format=%s rejected: %v", format, err)
			}
		})
	}
	// GNU tar adds directory entries when given folders: not a bundle.
	out := filepath.Join(dir, "dirs.tar")
	run(t, x, "tar", "-cf", out, SumsName, SignatureName, ManifestName, "projects")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := readAll(f); !isVerify(err) || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("tar with directory entries: %v, want ErrVerify about a directory", err)
	}
}
