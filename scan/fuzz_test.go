package scan

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/scan/scantest"
)

var fuzzLimits = Limits{MaxFileSize: 64 << 10, MaxLineLength: 4 << 10, MaxArchiveEntries: 64, MaxArchiveBytes: 1 << 20, MaxFindings: 200, MaxSpool: 1 << 20}

var validKinds = map[string]bool{KindURL: true, KindPackage: true, KindPip: true, KindContainer: true, KindGit: true, KindBlob: true}

// FuzzScanScript feeds any text, under any file name, to the script
// scanner: it must not panic, and every finding must be well formed, on a
// line the file has, within the limits.
func FuzzScanScript(f *testing.F) {
	for _, p := range []*scantest.Project{scantest.Slurm4(), scantest.PBSPro(), scantest.Healthagent(), scantest.Monitoring()} {
		for name, b := range p.Source {
			f.Add(name, string(b))
		}
	}
	f.Add("a.sh", "curl \\\n\\\nhttps://x.example/$V \\")
	f.Add("a.py", "'''\n\"\"\"pip install x'''\n[\"pip\", \"install\", y]")
	f.Add("a.ps1", "<# a #> <# b\n#> Invoke-WebRequest https://x.example/`\n")
	f.Fuzz(func(t *testing.T, name, text string) {
		if name == "" {
			name = "a.sh"
		}
		c := newCollector(fuzzLimits)
		if err := scanFile(context.Background(), c, name, "s", name, int64(len(text)), strings.NewReader(text)); err != nil {
			t.Fatalf("scan: %v", err)
		}
		lines := strings.Count(text, "\n") + 1
		if len(c.findings) > fuzzLimits.MaxFindings {
			t.Fatalf("%d findings, limit %d", len(c.findings), fuzzLimits.MaxFindings)
		}
		for _, fi := range c.findings {
			if !validKinds[fi.Kind] || fi.Target == "" || fi.File != name || fi.Spec != "s" || fi.Line < 1 || fi.Line > lines || fi.Detail == "" && fi.Kind != KindBlob {
				t.Fatalf("bad finding %+v (file has %d lines)", fi, lines)
			}
			if len(fi.Target) > fuzzLimits.MaxLineLength {
				t.Fatalf("target longer than a line: %d bytes", len(fi.Target))
			}
		}
		d := depSet{self: "x"}
		if err := d.read(context.Background(), strings.NewReader(text), name, newCollector(fuzzLimits)); err != nil {
			t.Fatalf("templates: %v", err)
		}
	})
}

// FuzzScanArchive feeds any bytes as a tar, tar.gz or zip blob: no panic,
// no error (the reader never fails), findings inside the blob.
func FuzzScanArchive(f *testing.F) {
	script := map[string][]byte{"p/install.sh": []byte("pip install wheel\ncurl https://x.example/y\n")}
	f.Add("x.tar.gz", scantest.TarGz(script, map[string]string{"p/l": "/etc"}))
	f.Add("x.zip", scantest.Zip(script))
	f.Add("x.tar", []byte{})
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		switch {
		case strings.HasSuffix(name, ".zip"):
			name = "x.zip"
		case strings.HasSuffix(name, ".tar"):
			name = "x.tar"
		default:
			name = "x.tar.gz"
		}
		as, err := ScanArchive(context.Background(), name, bytes.NewReader(data), int64(len(data)), fuzzLimits)
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		for _, fi := range as.Findings {
			if !validKinds[fi.Kind] || !strings.HasPrefix(fi.File, "blobs/"+name+"!") || fi.Line < 1 {
				t.Fatalf("bad finding %+v", fi)
			}
		}
	})
}
