package syncjob

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/mirror"
)

func TestFingerprintAndDiff(t *testing.T) {
	rel := func(assets ...mirror.Asset) *mirror.Release { return &mirror.Release{Tag: "1.0", Assets: assets} }
	base := rel(
		mirror.Asset{ID: 1, Name: "a.rpm", Size: 10, Digest: "sha256:aa"},
		mirror.Asset{ID: 2, Name: "b.whl", Size: 20},
		mirror.Asset{ID: 3, Name: "c.tgz", Size: 30, Digest: "sha256:cc"},
	)
	tests := []struct {
		name string
		cur  *mirror.Release
		diff []string
	}{
		{"same, other order", rel(base.Assets[2], base.Assets[0], base.Assets[1]), nil},
		{"re-uploaded with the same digest", rel(mirror.Asset{ID: 9, Name: "a.rpm", Size: 10, Digest: "sha256:aa"}, base.Assets[1], base.Assets[2]), nil},
		{"new digest", rel(mirror.Asset{ID: 9, Name: "a.rpm", Size: 10, Digest: "sha256:ab"}, base.Assets[1], base.Assets[2]), []string{"a.rpm"}},
		{"no digest, new id", rel(base.Assets[0], mirror.Asset{ID: 8, Name: "b.whl", Size: 20}, base.Assets[2]), []string{"b.whl"}},
		{"size", rel(base.Assets[0], base.Assets[1], mirror.Asset{ID: 3, Name: "c.tgz", Size: 31, Digest: "sha256:cc"}), []string{"c.tgz"}},
		{"added and removed", rel(base.Assets[0], base.Assets[1], mirror.Asset{ID: 4, Name: "d", Size: 1}), []string{"c.tgz", "d"}},
		{"still uploading is not there yet", rel(base.Assets[0], base.Assets[1], base.Assets[2], mirror.Asset{ID: 5, Name: "e", State: "starter"}), nil},
	}
	old := AssetsOf(base)
	for _, tc := range tests {
		cur := AssetsOf(tc.cur)
		same := Fingerprint(old) == Fingerprint(cur)
		if same != (tc.diff == nil) {
			t.Errorf("%s: fingerprints equal = %v", tc.name, same)
		}
		if got := DiffAssets(old, cur); !slices.Equal(got, tc.diff) {
			t.Errorf("%s: diff %v, want %v", tc.name, got, tc.diff)
		}
	}
}

func TestBundleName(t *testing.T) {
	for rev, want := range map[int]string{1: "slurm-3.0.12.tar", 2: "slurm-3.0.12.r2.tar", 10: "slurm-3.0.12.r10.tar"} {
		if got := BundleName("slurm", "3.0.12", rev); got != want {
			t.Errorf("BundleName rev %d = %s, want %s", rev, got, want)
		}
	}
}

// TestIndexSequenceGrows: every index the job writes has a sequence one
// above the last, an idle run writes none, and losing index.json (moved
// away) or starting from an index written before sequences existed never
// reuses a number.
func TestIndexSequenceGrows(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: slurm\n    versions: [\"3.0.12\", \"latest\"]\n")
	w.mustRun(c)
	ix := mustLoadIndex(t, w.out())
	// Two bundles, an index after each.
	if ix.Sequence != 2 || ix.Updated.IsZero() {
		t.Fatalf("after the first run: sequence %d updated %v, want 2 and a time", ix.Sequence, ix.Updated)
	}
	w.mustRun(c)
	if again := mustLoadIndex(t, w.out()); again.Sequence != 2 {
		t.Errorf("an idle run wrote index sequence %d", again.Sequence)
	}
	if err := w.gh.AddRelease("cyclecloud-slurm", "4.1.0", "4.0.9"); err != nil {
		t.Fatal(err)
	}
	w.mustRun(c)
	if ix = mustLoadIndex(t, w.out()); ix.Sequence != 3 {
		t.Errorf("after a new release: sequence %d, want 3", ix.Sequence)
	}

	// index.json moved away: the job starts a fresh index, numbered above
	// every index it wrote before.
	for _, n := range []string{IndexName, IndexSigName} {
		if err := os.Rename(filepath.Join(w.out(), n), filepath.Join(w.dir, n+".old")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.gh.AddRelease("cyclecloud-slurm", "4.2.0", "4.1.0"); err != nil {
		t.Fatal(err)
	}
	w.mustRun(c)
	if ix = mustLoadIndex(t, w.out()); ix.Sequence <= 3 {
		t.Errorf("after index.json was moved away: sequence %d, want above 3", ix.Sequence)
	}

	// An index from before sequences (no sequence field, no sequence file)
	// continues at 1.
	legacy := t.TempDir()
	b, err := os.ReadFile(filepath.Join(w.out(), IndexName))
	if err != nil {
		t.Fatal(err)
	}
	old := regexp.MustCompile(`(?m)^  "sequence": [0-9]+,\n`).ReplaceAll(b, nil)
	if err := os.WriteFile(filepath.Join(legacy, IndexName), old, 0o644); err != nil {
		t.Fatal(err)
	}
	lx := mustLoadIndex(t, legacy)
	if lx.Sequence != 0 {
		t.Fatalf("legacy index parsed with sequence %d", lx.Sequence)
	}
	if err := writeIndex(legacy, lx, w.signer(t), time.Now(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if lx = mustLoadIndex(t, legacy); lx.Sequence != 1 {
		t.Errorf("first index after a legacy one: sequence %d, want 1", lx.Sequence)
	}
	// A damaged sequence file does not stop the job; the index's own
	// sequence still grows.
	if err := os.WriteFile(filepath.Join(legacy, SequenceName), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeIndex(legacy, lx, w.signer(t), time.Now(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if lx = mustLoadIndex(t, legacy); lx.Sequence != 2 {
		t.Errorf("after a damaged sequence file: sequence %d, want 2", lx.Sequence)
	}
}

func mustLoadIndex(t *testing.T, dir string) *Index {
	t.Helper()
	ix, err := loadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// signer loads the world's signing key.
func (w *world) signer(t *testing.T) *trust.Signer {
	t.Helper()
	s, err := trust.LoadSigner(w.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
