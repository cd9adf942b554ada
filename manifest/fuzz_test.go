package manifest

import (
	"bytes"
	"io"
	"testing"
)

// Parse either rejects manifest.json with ErrVerify or accepts something
// that validates and survives a Marshal/Parse round trip unchanged.
func FuzzParseManifest(f *testing.F) {
	good, _ := demoBundle().m.Marshal()
	f.Add(good)
	f.Add([]byte(`{"schema":"ccmirror.bundle/v1","created":"2024-01-02T03:04:05Z","tool":"t","projects":[]}`))
	f.Add([]byte(`{"schema":"ccmirror.bundle/v1","extra":1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !isVerify(err) {
				t.Fatalf("error does not wrap ErrVerify: %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid manifest: %v", err)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(m)): %v", err)
		}
		out2, _ := m2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the manifest:\n%s\n%s", out, out2)
		}
		for _, fl := range m.Files() {
			if pathProblem(fl.Path) != "" {
				t.Fatalf("accepted unsafe payload path %q", fl.Path)
			}
		}
	})
}

// The reader never panics, and anything it accepts is what SHA256SUMS and
// manifest.json declare.
func FuzzReader(f *testing.F) {
	f.Add(demoBundle().write(f, nil))
	f.Add(demoBundle().write(f, &fakeSigner{sig: fakeSig}))
	f.Add(newTestBundle("x", "1", nil, nil).write(f, nil))
	good := demoBundle().write(f, nil)
	for _, c := range rejectCases {
		if c.name == "too much zero padding" { // a 1 MiB seed slows every fuzz run
			continue
		}
		b, _ := applyReject(f, c, good)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		br, err := NewReader(bytes.NewReader(b))
		if err != nil {
			if !isVerify(err) {
				t.Fatalf("error on in-memory input does not wrap ErrVerify: %v", err)
			}
			return
		}
		files := br.Manifest().Files()
		for i := 0; ; i++ {
			p, err := br.Next()
			if err == io.EOF {
				if i != len(files) {
					t.Fatalf("io.EOF after %d of %d files", i, len(files))
				}
				return
			}
			if err != nil {
				if !isVerify(err) {
					t.Fatalf("error on in-memory input does not wrap ErrVerify: %v", err)
				}
				return
			}
			if i >= len(files) || p.File != files[i] {
				t.Fatalf("payload %d is %+v, not the declared %d-th file", i, p.File, i)
			}
			data, err := io.ReadAll(p)
			if err != nil {
				if !isVerify(err) {
					t.Fatalf("payload error does not wrap ErrVerify: %v", err)
				}
				return
			}
			if hexSum(data) != p.File.SHA256 || int64(len(data)) != p.File.Size {
				t.Fatalf("payload %s delivered without matching its hash and size", p.File.Path)
			}
		}
	})
}
