package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

// testEnv is an env writing into buffers, for calling runX directly.
func testEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, &out, &errb
}

// TestVerbsWithoutShell calls each verb's runX with an options struct, no
// command line: the usage rules live there, not in flag parsing.
func TestVerbsWithoutShell(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "x.tar")
	os.WriteFile(bundle, []byte("not a bundle"), 0o644)
	tests := []struct {
		name string
		run  func(e *env) error
		want string
	}{
		{"verify no trust", func(e *env) error { return runVerify(ctx, e, &verifyOptions{Args: []string{bundle}}) }, "verify: --allowed-signers FILE"},
		{"verify two bundles", func(e *env) error {
			return runVerify(ctx, e, &verifyOptions{Args: []string{bundle, bundle}, Trust: trustFlags{Insecure: true}})
		}, "want exactly one BUNDLE argument, got 2"},
		{"install no trust", func(e *env) error { return runInstall(ctx, e, &installOptions{Args: []string{bundle}}) }, "install: --allowed-signers FILE"},
		{"join no trust", func(e *env) error {
			return runJoin(ctx, e, &joinOptions{Args: []string{bundle + ".parts"}, Output: filepath.Join(dir, "j.tar")})
		}, "join: --allowed-signers FILE"},
		{"inspect no bundle", func(e *env) error { return runInspect(ctx, e, &inspectOptions{}) }, "inspect: want exactly one BUNDLE"},
		{"status argument", func(e *env) error { return runStatus(ctx, e, &statusOptions{Args: []string{"x"}}) }, "status: takes no arguments"},
		{"plan no output", func(e *env) error { return runPlan(ctx, e, &planOptions{}) }, "plan: -o FILE is required"},
		{"push one argument", func(e *env) error { return runPush(ctx, e, &pushOptions{Args: []string{bundle}, Concurrency: 1}) }, "push: want BUNDLE and URL"},
		{"push unknown URL", func(e *env) error {
			return runPush(ctx, e, &pushOptions{Args: []string{bundle, "https://example.com/up/"}, Concurrency: 1})
		}, "not a URL ccmirror can read"},
		{"pull no output", func(e *env) error {
			return runPull(ctx, e, &pullOptions{Args: []string{"http://127.0.0.1:1/devstoreaccount1/c/x.tar"}})
		}, "pull: -o FILE is required"},
		{"split bad size", func(e *env) error { return runSplit(ctx, e, &splitOptions{Args: []string{bundle}, Size: "lots"}) }, "split: --size"},
		{"sync no config", func(e *env) error { return runSync(ctx, e, &syncOptions{}) }, "sync: --config FILE is required"},
		{"fetch nothing", func(e *env) error { return runFetch(ctx, e, &fetchOptions{Concurrency: 1}) }, "fetch: name at least one REF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, out, _ := testEnv()
			err := tc.run(e)
			if !errors.Is(err, errclass.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want a usage error saying %q", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("a usage error printed on stdout: %q", out)
			}
		})
	}
}

// TestTrustRule: every verb that checks signatures spells the rule the
// same way: --allowed-signers required (exit 2) unless
// --insecure-skip-signature, which warns exactly once on stderr.
func TestTrustRule(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "x.tar")
	os.WriteFile(bundle, []byte("not a bundle"), 0o644)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	for _, args := range [][]string{
		{"verify", bundle},
		{"install", "--root", root, bundle},
		{"join", bundle + ".parts", "-o", filepath.Join(dir, "j.tar")},
	} {
		t.Run(args[0], func(t *testing.T) {
			code, _, stderr := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(stderr, "ccmirror: "+args[0]+": --allowed-signers FILE (or CCMIRROR_ALLOWED_SIGNERS) is required") {
				t.Errorf("without trust flags: exit %d, stderr %q", code, stderr)
			}
			_, _, stderr = runCLI(t, append([]string{args[0], "--insecure-skip-signature"}, args[1:]...)...)
			if n := strings.Count(stderr, "NOT checked"); n != 1 {
				t.Errorf("--insecure-skip-signature warned %d times, want once; stderr %q", n, stderr)
			}
		})
	}
}

// An unknown URL as BUNDLE is a usage error naming the forms accepted, not
// an attempt to reach Azure.
func TestUnknownBundleURL(t *testing.T) {
	_, allowed := testKeys(t)
	for _, verb := range []string{"verify", "install", "inspect"} {
		args := []string{verb, "https://example.com/slurm-2.5.0.tar"}
		if verb != "inspect" {
			args = []string{verb, "--allowed-signers", allowed, "--root", t.TempDir(), "https://example.com/slurm-2.5.0.tar"}
			if verb == "verify" {
				args = []string{verb, "--allowed-signers", allowed, "https://example.com/slurm-2.5.0.tar"}
			}
		}
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB") ||
			!strings.Contains(stderr, "devstoreaccount1") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s of an unknown URL: exit %d, stderr %q; want exit 2 and one line with the accepted forms", verb, code, stderr)
		}
	}
}
