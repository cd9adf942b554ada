package transport

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/transport/blob"
)

func TestClassify(t *testing.T) {
	t.Setenv(blob.EnvAccountName, "")
	t.Setenv(blob.EnvConnectionString, "")
	tests := []struct {
		arg     string
		kind    Kind
		usage   bool   // want an error matching errclass.ErrUsage
		message string // the error names this
	}{
		{"slurm-2.5.0.tar", File, false, ""},
		{"/media/stick/slurm-2.5.0.tar", File, false, ""},
		{"slurm-2.5.0.tar.001", Split, false, ""},
		{"slurm-2.5.0.tar.0001", Split, false, ""},
		{"dir/slurm-2.5.0.tar.parts", Split, false, ""},
		{"https://acct01.blob.core.windows.net/bundles/slurm-2.5.0.tar", Blob, false, ""},
		{"https://acct01.blob.core.windows.net/bundles/slurm-2.5.0.tar?sv=1&sig=abc", Blob, false, ""},
		{"https://acct01.blob.core.chinacloudapi.cn/bundles/x.tar", Blob, false, ""},
		{"http://127.0.0.1:10000/devstoreaccount1/bundles/x.tar", Blob, false, ""},
		{"http://azurite:10000/devstoreaccount1/bundles/x.tar", Blob, false, ""},
		{"https://example.com/slurm-2.5.0.tar", 0, true, "https://ACCOUNT.blob.core.windows.net/"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/download/2.5.0/x.tar", 0, true, "not a URL ccmirror can read"},
		{"ftp://acct01.blob.core.windows.net/bundles/x.tar", 0, true, "devstoreaccount1"},
		{"s3://bucket/x.tar", 0, true, "s3://bucket/x.tar"},
		{"https://example.com/x.tar?sig=SECRET", 0, true, "sig=REDACTED"},
		{"https://acct01.blob.core.windows.net/", 0, true, "missing container"},
	}
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			k, err := Classify(tc.arg)
			if tc.usage {
				if !errors.Is(err, errclass.ErrUsage) || errors.Is(err, errclass.ErrUpstream) {
					t.Fatalf("Classify: %v, want a usage error", err)
				}
				if !strings.Contains(err.Error(), tc.message) || strings.Contains(err.Error(), "SECRET") {
					t.Errorf("error %q, want it to mention %q and no SAS signature", err, tc.message)
				}
				return
			}
			if err != nil || k != tc.kind {
				t.Errorf("Classify = %v, %v; want %v", k, err, tc.kind)
			}
		})
	}
}

// A custom domain is a blob URL only when the environment names the account.
func TestClassifyCustomDomain(t *testing.T) {
	t.Setenv(blob.EnvConnectionString, "")
	t.Setenv(blob.EnvAccountName, "")
	const u = "https://bundles.example.com/ccmirror/x.tar"
	if _, err := Classify(u); !errors.Is(err, errclass.ErrUsage) {
		t.Fatalf("custom domain without %s: %v, want a usage error", blob.EnvAccountName, err)
	}
	t.Setenv(blob.EnvAccountName, "acct01")
	if k, err := Classify(u); err != nil || k != Blob {
		t.Fatalf("custom domain with %s: %v, %v", blob.EnvAccountName, k, err)
	}
}

// A split bundle opened with no way to check its part list fails closed;
// a local file opens with its size known.
func TestOpenLocal(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "x.tar")
	os.WriteFile(f, []byte("hello"), 0o644)
	b, err := Open(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != File || b.Size != 5 {
		t.Errorf("Open(file) = kind %v size %d", b.Kind, b.Size)
	}
	if err := b.Finish(nil); err != nil {
		t.Errorf("Finish: %v", err)
	}
	if _, err := Open(context.Background(), f+".parts"); !errors.Is(err, errclass.ErrVerify) || !strings.Contains(err.Error(), "--allowed-signers") {
		t.Errorf("Open(split) without a check: %v, want a verification error naming --allowed-signers", err)
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "nope.tar")); err == nil || !strings.Contains(err.Error(), "nope.tar") {
		t.Errorf("Open(missing) = %v", err)
	}
}
