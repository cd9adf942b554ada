package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\x00\x00\x00b", "a?b"},
		{"tab\there", "tab?here"},
		{"bad \xff\xfe utf8", "bad ? utf8"},
		{"kept: é … ✓", "kept: é … ✓"},
		{strings.Repeat("a", 400) + strings.Repeat("b", 400) + " (ENOSPC)", strings.Repeat("a", 341) + "…" + strings.Repeat("b", 161) + " (ENOSPC)"},
	}
	for _, tc := range tests {
		if got := printable(tc.in, maxErrorLine); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestWrongFilesCLI: what an admin may mistype gets words and the right
// exit code, on one short printable line.
func TestWrongFilesCLI(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--sign-key", key, "--cache", filepath.Join(dir, "cache"), "-o", good, "gridengine@2.1.0")
	mustRunCLI(t, "split", "--sign-key", key, "--size", "20K", good)
	line, _ := os.ReadFile(allowed) // PRINCIPAL namespaces="…" TYPE BASE64
	f := strings.Fields(string(line))
	os.WriteFile(key+".pub", []byte(f[len(f)-2]+" "+f[len(f)-1]+" ops@example.com\n"), 0o644)
	jsonFile := filepath.Join(dir, "request.json")
	os.WriteFile(jsonFile, []byte(`{"schema": "ccmirror.request/v1"}`), 0o644)
	textFile := filepath.Join(dir, "notes.txt")
	os.WriteFile(textFile, []byte("hello\n"), 0o644)
	otherTar := filepath.Join(dir, "other.tar")
	if out, err := exec.Command("tar", "-cf", otherTar, "-C", dir, "notes.txt").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)

	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"pub as allowed_signers", []string{"verify", "--allowed-signers", key + ".pub", good}, exitUsage, `: a public key (.pub), not an allowed_signers file; write: ops@example.com namespaces="ccmirror" ssh-ed25519 `},
		{"private key as allowed_signers", []string{"install", "--root", root, "--allowed-signers", key, good}, exitUsage, ": a PRIVATE key"},
		{"swapped arguments", []string{"verify", "--allowed-signers", good, allowed}, exitUsage, "the order is --allowed-signers FILE BUNDLE"},
		{"JSON as bundle", []string{"verify", "--allowed-signers", allowed, jsonFile}, exitVerify, "not a ccmirror bundle: JSON"},
		{"text as bundle", []string{"install", "--root", root, "--allowed-signers", allowed, textFile}, exitVerify, "not a ccmirror bundle: a text file"},
		{"other tar as bundle", []string{"inspect", otherTar}, exitVerify, `not a ccmirror bundle: a tar archive whose first entry is "notes.txt"`},
		{"part 2", []string{"install", "--root", root, "--allowed-signers", allowed, good + ".002"}, exitUsage, "this is part 2 of a split bundle: give " + good + ".001 or " + good + ".parts"},
		{"unknown verb", []string{"instal", good}, exitUsage, `unknown command "instal"; the commands are: fetch, verify, inspect, install`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			line := strings.TrimSpace(stderr)
			if code != tc.code || !strings.Contains(line, tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, stderr, tc.code, tc.msg)
			}
			if strings.Count(line, "\n") != 0 || utf8.RuneCountInString(line) > maxErrorLine+len("ccmirror: ")+1 {
				t.Errorf("stderr is not one short line: %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
		})
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "work")); len(entries) != 0 {
		t.Error("a wrong file wrote into the root")
	}
}

// TestWarningsOnce: a warning prints once, on stderr, however many layers
// report it (here: the trust flags, staging's log and its report).
func TestWarningsOnce(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "u.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--unsigned", "--cache", filepath.Join(dir, "cache"), "-o", bundle, "gridengine@2.1.0")
	owner, _, _ := stagingOwner(t)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	code, stdout, stderr := runCLI(t, "install", "--insecure-skip-signature", "--root", root, "--owner", owner, bundle)
	if code != exitOK {
		t.Fatalf("install: exit %d: %s", code, stderr)
	}
	if n := strings.Count(strings.ToLower(stderr), "not checked"); n != 1 {
		t.Errorf("the insecure warning printed %d times on stderr, want once:\n%s", n, stderr)
	}
	if strings.Contains(strings.ToLower(stdout), "warning:") || strings.Contains(stdout, "NOT checked") {
		t.Errorf("a warning on stdout:\n%s", stdout)
	}
}
