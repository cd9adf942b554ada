package index

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, name := range []string{Name, "legacy-index.json"} {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"schema":"ccmirror.index/v1","sequence":1,"updated":"2026-01-01T00:00:00Z","bundles":[]}`))
	f.Add([]byte(`{"schema":"ccmirror.index/v1","bundles":[{"file":"../x"}]} {}`))
	f.Add([]byte(`{"schema":"ccmirror.index/v1","sequence":9223372036854775808}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := Parse(data)
		if err != nil {
			return
		}
		if ix.Sequence < 0 || ix.Updated.IsZero() {
			t.Fatalf("accepted sequence %d, updated %v", ix.Sequence, ix.Updated)
		}
		out, err := ix.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("a marshalled index does not parse: %v\n%s", err, out)
		}
		if len(again.Bundles) != len(ix.Bundles) || again.Sequence != ix.Sequence {
			t.Fatalf("round trip changed the index")
		}
		for _, e := range again.Bundles {
			if !ValidFileName(e.File) || again.Offer(e.Project, e.Version) == nil {
				t.Fatalf("entry %q accepted but not usable", e.File)
			}
		}
	})
}
