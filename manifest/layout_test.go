package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// memFile is an io.WriterAt over a growing byte slice.
type memFile struct{ b []byte }

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(f.b)) {
		f.b = append(f.b, make([]byte, end-int64(len(f.b)))...)
	}
	copy(f.b[off:], p)
	return len(p), nil
}

// placeholders returns a copy of m with every hash zeroed and another
// creation time, as a caller plans before anything is downloaded.
func placeholders(m *Manifest) *Manifest {
	c := *m
	c.Created = m.Created.Add(-1234 * time.Hour)
	zero := strings.Repeat("0", 64)
	c.Projects = nil
	for _, p := range m.Projects {
		p.Source.SHA256 = zero
		p.Blobs = append([]Blob(nil), p.Blobs...)
		for i := range p.Blobs {
			p.Blobs[i].SHA256 = zero // GitHub's digest is known beforehand
		}
		c.Projects = append(c.Projects, p)
	}
	return &c
}

// inPlace builds the bundle of tb the way an in-place writer does: plan
// with placeholders, write the payload at its offsets (in a shuffled
// order), then the head.
func inPlace(t *testing.T, tb *testBundle, sig []byte, rng *rand.Rand) []byte {
	t.Helper()
	pm := placeholders(tb.m)
	var pe []Entry
	for _, e := range tb.entries() {
		e.SHA256 = strings.Repeat("0", 64)
		pe = append(pe, e)
	}
	l, err := PlanBundle(pm, pe, len(sig))
	if err != nil {
		t.Fatalf("PlanBundle: %v", err)
	}
	var f memFile
	files := tb.m.Files()
	rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	for _, fl := range files {
		off, size, ok := l.DataOffset(fl.Path)
		if !ok || size != fl.Size {
			t.Fatalf("DataOffset(%s) = %d, %d, %v", fl.Path, off, size, ok)
		}
		if off < l.HeadSize() {
			t.Fatalf("%s at %d, inside the head (%d bytes)", fl.Path, off, l.HeadSize())
		}
		f.WriteAt(tb.data[fl.Path], off)
	}
	sb, err := l.Sums(tb.m)
	if err != nil {
		t.Fatal(err)
	}
	if sig != nil && !bytes.Contains(sb, []byte(tb.m.Projects[0].Source.SHA256)) {
		t.Fatal("Sums lacks the source hash")
	}
	if err := l.WriteHead(&f, tb.m, tb.entries(), sig); err != nil {
		t.Fatalf("WriteHead: %v", err)
	}
	if int64(len(f.b)) != l.Size() {
		t.Fatalf("in-place bundle is %d bytes, layout says %d", len(f.b), l.Size())
	}
	return f.b
}

func TestLayoutMatchesWriteBundle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	long := strings.Repeat("d", 120) + "/" + strings.Repeat("n", 200) + ".rpm"
	many := map[string][]byte{}
	for i := range 60 {
		many[fmt.Sprintf("f%03d.bin", i)] = bytes.Repeat([]byte{byte(i)}, i*97)
	}
	cases := map[string]*testBundle{
		"demo":   demoBundle(),
		"long":   newTestBundle("demo", "1.0.0", []byte("src"), map[string][]byte{long: []byte("long"), "x": nil}),
		"blocks": newTestBundle("b", "2.0", bytes.Repeat([]byte("s"), 1024), map[string][]byte{"a": make([]byte, 512), "b": make([]byte, 511), "c": make([]byte, 513), "z": {}}),
		"empty":  newTestBundle("e", "1", nil, nil),
		"many":   newTestBundle("many", "3.1.4", []byte("source"), many),
	}
	// A fuzz-ish table: random names (some long), sizes and contents.
	for i := range 12 {
		blobs := map[string][]byte{}
		for j := range rng.IntN(8) {
			name := fmt.Sprintf("r%d-%d", i, j)
			if rng.IntN(3) == 0 {
				name = strings.Repeat("p", 1+rng.IntN(90)) + "/" + name + strings.Repeat("q", rng.IntN(200))
			}
			b := make([]byte, []int{0, 1, 511, 512, 513, 1024, rng.IntN(5000)}[rng.IntN(7)])
			for k := range b {
				b[k] = byte(rng.IntN(256))
			}
			blobs[name] = b
		}
		cases[fmt.Sprintf("random%d", i)] = newTestBundle(fmt.Sprintf("rnd%d", i), "1.0."+fmt.Sprint(i), []byte(fmt.Sprint("src", i)), blobs)
	}
	for name, tb := range cases {
		for _, sig := range [][]byte{nil, fakeSig, bytes.Repeat([]byte("s"), 512)} {
			t.Run(fmt.Sprintf("%s/sig%d", name, len(sig)), func(t *testing.T) {
				var signer Signer
				if sig != nil {
					signer = &fakeSigner{sig: sig}
				}
				want := tb.write(t, signer)
				got := inPlace(t, tb, sig, rng)
				if !bytes.Equal(got, want) {
					t.Fatalf("in-place bundle (%d bytes) differs from WriteBundle's (%d bytes)", len(got), len(want))
				}
			})
		}
	}
}

func TestLayoutMismatch(t *testing.T) {
	tb := demoBundle()
	l, err := PlanBundle(placeholders(tb.m), tb.entries(), len(fakeSig))
	if err != nil {
		t.Fatal(err)
	}
	var f memFile
	// A signature a block longer moves every payload file.
	if err := l.WriteHead(&f, tb.m, tb.entries(), append(fakeSig, make([]byte, 512)...)); !errors.Is(err, ErrLayout) {
		t.Fatalf("longer signature: %v, want ErrLayout", err)
	}
	// Unsigned against a signed plan.
	if err := l.WriteHead(&f, tb.m, tb.entries(), nil); !errors.Is(err, ErrLayout) {
		t.Fatalf("no signature: %v, want ErrLayout", err)
	}
	// A file of another size.
	other := demoBundle()
	other.data[other.m.Projects[0].Source.Path] = []byte("x")
	other.m.Projects[0].Source.Size = 1
	other.m.Projects[0].Source.SHA256 = hexSum([]byte("x"))
	if err := l.WriteHead(&f, other.m, other.entries(), fakeSig); !errors.Is(err, ErrLayout) {
		t.Fatalf("other size: %v, want ErrLayout", err)
	}
	if len(f.b) != 0 {
		t.Fatalf("a refused WriteHead wrote %d bytes", len(f.b))
	}
	if _, err := PlanBundle(tb.m, tb.entries(), MaxSignatureSize+1); err == nil {
		t.Fatal("PlanBundle accepted an oversized signature")
	}
}
