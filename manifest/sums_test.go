package manifest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FormatSums prints byte for byte what coreutils sha256sum prints for the
// same files given in sorted order, escapes included.
func TestFormatSumsMatchesSha256sum(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum not on PATH; cannot compare with coreutils")
	}
	dir := t.TempDir()
	files := map[string]string{
		"manifest.json":                   "{}\n",
		"projects/x/1.0/source.tar.gz":    "src",
		"projects/x/blobs/a-b_c+d@e~f=g":  "",
		"projects/x/blobs/Z.rpm":          "upper",
		"projects/x/blobs/sub/deep/y.whl": strings.Repeat("y", 70000),
		`odd\name`:                        "backslash",
		"new\nline":                       "newline",
	}
	var sums []Sum
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, Sum{Path: name, SHA256: hexSum([]byte(content))})
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	cmd := exec.Command("sha256sum", append([]string{"--"}, names...)...)
	cmd.Dir = dir
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("sha256sum: %v", err)
	}
	if got := FormatSums(sums); !bytes.Equal(got, want) {
		t.Fatalf("FormatSums:\n%s\nsha256sum:\n%s", got, want)
	}
}

func TestFormatSumsSortsWithoutTouchingInput(t *testing.T) {
	h := strings.Repeat("0", 64)
	in := []Sum{{"b", h}, {"a/b", h}, {"a-b", h}, {"A", h}}
	got := string(FormatSums(in))
	want := h + "  A\n" + h + "  a-b\n" + h + "  a/b\n" + h + "  b\n"
	if got != want {
		t.Errorf("got\n%s\nwant (C locale byte order)\n%s", got, want)
	}
	if in[0].Path != "b" {
		t.Error("FormatSums reordered its argument")
	}
}

func TestParseSums(t *testing.T) {
	h := strings.Repeat("a", 64)
	good := h + "  manifest.json\n" + h + "  projects/x/blobs/a\n"
	sums, err := ParseSums([]byte(good))
	if err != nil {
		t.Fatalf("ParseSums(valid): %v", err)
	}
	if len(sums) != 2 || sums[1] != (Sum{"projects/x/blobs/a", h}) {
		t.Fatalf("got %v", sums)
	}
	// As in sha256sum -c, everything after the two spaces is the name.
	if sums, err := ParseSums([]byte(h + "   a\n")); err != nil || sums[0].Path != " a" {
		t.Errorf("three spaces: got %v, %v; want the path \" a\"", sums, err)
	}
	bad := []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"no final newline", h + "  a", "no newline"},
		{"blank line", h + "  a\n\n", "SHA256SUMS:2:"},
		{"binary marker", h + " *a\n", "SHA256SUMS:1:"},
		{"one space", h + " a\n", "SHA256SUMS:1:"},
		{"short hash", h[:63] + "  a\n", "SHA256SUMS:1:"},
		{"upper case", strings.ToUpper(h) + "  a\n", "lower-case hex"},
		{"not hex", strings.Repeat("g", 64) + "  a\n", "lower-case hex"},
		{"CRLF", h + "  a\r\n", "control character"},
		{"escaped name", `\` + h + "  a\\\\b\n", "escaped file name"},
		{"absolute", h + "  /etc/passwd\n", "absolute path"},
		{"dot-dot", h + "  a/../../b\n", "leaves the bundle"},
		{"dot element", h + "  ./a\n", "not a clean path"},
		{"trailing slash", h + "  a/\n", "not a clean path"},
		{"double slash", h + "  a//b\n", "not a clean path"},
		{"duplicate", h + "  a\n" + h + "  a\n", "SHA256SUMS:2: a listed twice"},
		{"unsorted", h + "  b\n" + h + "  a\n", "SHA256SUMS:2: a is not sorted after b"},
		{"invalid utf-8", h + "  \xff\n", "UTF-8"},
		{"long path", h + "  " + strings.Repeat("a", 4097) + "\n", "longer than 4096"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSums([]byte(c.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !isVerify(err) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q: want ErrVerify saying %q", err, c.want)
			}
		})
	}
}

// A SHA256SUMS ParseSums accepts is exactly what FormatSums prints for it.
func FuzzParseSums(f *testing.F) {
	h := strings.Repeat("0", 64)
	f.Add([]byte(h + "  manifest.json\n" + h + "  projects/x/blobs/a\n"))
	f.Add([]byte(h + "  a\n" + h + "  a\n"))
	f.Add([]byte(`\` + h + "  a\\\\b\n"))
	f.Add([]byte(h + " *a\n"))
	f.Add(rawEntries(f, demoBundle().write(f, nil))[0].body)
	f.Fuzz(func(t *testing.T, b []byte) {
		sums, err := ParseSums(b)
		if err != nil {
			if !isVerify(err) {
				t.Fatalf("error does not wrap ErrVerify: %v", err)
			}
			return
		}
		if got := FormatSums(sums); !bytes.Equal(got, b) {
			t.Fatalf("accepted non-canonical input %q (canonical %q)", b, got)
		}
	})
}
