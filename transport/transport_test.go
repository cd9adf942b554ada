package transport

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
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
	head := tarOf(t, "SHA256SUMS", "")
	os.WriteFile(f, head, 0o644)
	b, err := Open(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(b); !bytes.Equal(got, head) {
		t.Errorf("Open returned %d bytes, want the file's %d (the head check must not eat them)", len(got), len(head))
	}
	if b.Kind != File || b.Size != int64(len(head)) {
		t.Errorf("Open(file) = kind %v size %d", b.Kind, b.Size)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Finish: %v", err)
	}
	if _, err := Open(context.Background(), f+".parts"); !errors.Is(err, errclass.ErrVerify) || !strings.Contains(err.Error(), "--allowed-signers") {
		t.Errorf("Open(split) without a check: %v, want a verification error naming --allowed-signers", err)
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "nope.tar")); err == nil || !strings.Contains(err.Error(), "nope.tar") {
		t.Errorf("Open(missing) = %v", err)
	}
}

// tarOf is a tar archive with one entry.
func tarOf(t testing.TB, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	return buf.Bytes()
}

// TestWrongFiles: what is recognisably not a bundle is said in words
// (exit 4), and a later part of a split bundle names the parts to give
// (exit 2), before any consumer reads a byte.
func TestWrongFiles(t *testing.T) {
	dir := t.TempDir()
	long := "/" + strings.Repeat("x", 300)
	tests := []struct {
		name, data string
		usage      bool
		want       string
	}{
		{"empty.tar", "", false, "the file is empty"},
		{"request.json", `{"schema": "ccmirror.request/v1", "wanted": []}`, false, "JSON"},
		{"x.tar.parts.renamed", "{\n  \"schema\": \"ccmirror.parts/v1\"\n}", false, "part list"},
		{"notes.txt", "release notes\nline two\n", false, `a text file starting "release notes"`},
		{"other.tar", string(tarOf(t, "etc/passwd", "root:x:0:0")), false, `first entry is "etc/passwd"`},
		{"long-name.tar", string(tarOf(t, long, "")), false, "…"},
		{"x.tar.gz", "\x1f\x8b\x08\x00" + strings.Repeat("\x00", 600), false, "gzip"},
		{"bundle.sig", "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n", false, "SSH signature"},
		{"random.bin", strings.Repeat("\x00\x01\xfe", 400), false, "binary data"},
		{"slurm-2.5.0.tar.002", strings.Repeat("\x00\x01\xfe", 400), true, "this is part 2 of a split bundle: give " + filepath.Join(dir, "slurm-2.5.0.tar.001") + " or " + filepath.Join(dir, "slurm-2.5.0.tar.parts")},
		{"big.tar.0012", "tail of a bundle", true, "this is part 12 of a split bundle: give " + filepath.Join(dir, "big.tar.0001") + " or "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, []byte(tc.data), 0o644)
			_, err := Open(context.Background(), p)
			class := errclass.ErrVerify
			if tc.usage {
				class = errclass.ErrUsage
			}
			if !errors.Is(err, class) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%s) = %v, want %v saying %q", tc.name, err, class, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\x00\n\x1f") || len(err.Error()) > 400 {
				t.Errorf("error carries raw bytes or runs long: %q", err)
			}
		})
	}
}
