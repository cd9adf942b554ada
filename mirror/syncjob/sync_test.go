package syncjob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/flock"
	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/transport/split"
)

func TestSyncTwiceSecondRunDoesNothing(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: slurm\n    versions: [\"3.0.12\", \"latest\"]\n")

	s1 := w.mustRun(c)
	if got, want := files(s1.New), []string{"slurm-3.0.12.tar", "slurm-4.0.9.tar"}; !slices.Equal(got, want) {
		t.Fatalf("first run wrote %v, want %v", got, want)
	}
	if s1.NothingNew || s1.Downloaded == 0 {
		t.Errorf("first run: nothing_new=%v downloaded=%d", s1.NothingNew, s1.Downloaded)
	}

	// The index lists both bundles as they are on disk and is signed.
	ixb, err := os.ReadFile(filepath.Join(w.out(), IndexName))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := ParseIndex(ixb)
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Bundles) != 2 {
		t.Fatalf("index has %d bundles, want 2", len(ix.Bundles))
	}
	for _, e := range ix.Bundles {
		b, err := os.ReadFile(filepath.Join(w.out(), e.File))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if e.SHA256 != hex.EncodeToString(sum[:]) || e.Size != int64(len(b)) {
			t.Errorf("index entry %s: sha256 %s size %d, file has %x size %d", e.File, e.SHA256, e.Size, sum, len(b))
		}
		if e.Project != "slurm" || e.Repository != "Azure/cyclecloud-slurm" || e.Commit == "" || e.Revision != 1 || len(e.Assets) == 0 || e.Created.IsZero() {
			t.Errorf("index entry incomplete: %+v", e)
		}
		// The bundle itself is a signed bundle the same key vouches for.
		rep, err := staging.Verify(context.Background(), strings.NewReader(string(b)), staging.VerifyOptions{Allowed: w.allowed})
		if err != nil {
			t.Errorf("verify %s: %v", e.File, err)
		} else if rep.Manifest.Projects[0].Tag != e.Tag {
			t.Errorf("%s holds tag %s, index says %s", e.File, rep.Manifest.Projects[0].Tag, e.Tag)
		}
	}
	sig, err := os.ReadFile(filepath.Join(w.out(), IndexSigName))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := w.allowed.Verify(ixb, sig, "ccmirror", time.Now()); err != nil {
		t.Errorf("index.json.sig does not verify: %v", err)
	} else if id.Principal != "mirror@example" {
		t.Errorf("index signed by %q", id.Principal)
	}
	tampered := strings.Replace(string(ixb), "4.0.9", "4.0.8", 1)
	if _, err := w.allowed.Verify([]byte(tampered), sig, "ccmirror", time.Now()); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("a changed index.json still verifies: %v", err)
	}

	before := snapshot(t, w.out())
	dirBefore, err := os.Stat(w.out())
	if err != nil {
		t.Fatal(err)
	}
	w.gh.ResetCounters()
	s2 := w.mustRun(c)
	if dirAfter, err := os.Stat(w.out()); err != nil || !dirAfter.ModTime().Equal(dirBefore.ModTime()) {
		t.Errorf("the idle run changed the output folder's entries (mtime %v, was %v)", dirAfter.ModTime(), dirBefore.ModTime())
	}
	if ix, err := ParseIndex(ixb); err != nil || s2.Sequence != ix.Sequence || ix.Sequence == 0 {
		t.Errorf("the idle run's summary says index sequence %d; index.json says %d (%v)", s2.Sequence, ix.Sequence, err)
	}
	if n := w.gh.AssetBytesServed(); n != 0 {
		t.Errorf("second run transferred %d asset bytes, want 0", n)
	}
	if !s2.NothingNew || len(s2.New) != 0 || len(s2.Unchanged) != 2 || s2.Downloaded != 0 {
		t.Errorf("second run: nothing_new=%v new=%v unchanged=%d downloaded=%d", s2.NothingNew, files(s2.New), len(s2.Unchanged), s2.Downloaded)
	}
	after := snapshot(t, w.out())
	if len(after) != len(before) {
		t.Errorf("second run changed the output folder: %d files before, %d after", len(before), len(after))
	}
	for name, st := range before {
		if got, ok := after[name]; !ok {
			t.Errorf("second run removed %s", name)
		} else if got != st {
			t.Errorf("second run rewrote %s", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("second run added %s", name)
		}
	}
}

func TestNewReleaseBetweenRuns(t *testing.T) {
	tests := []struct {
		policy    string
		first     []string
		unchanged int
	}{
		{policy: "latest", first: []string{"slurm-4.0.9.tar"}, unchanged: 0},
		{policy: "newest:2", first: []string{"slurm-4.0.9.tar", "slurm-3.0.13.tar"}, unchanged: 1},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			w := newWorld(t)
			c := w.config("  - ref: Azure/cyclecloud-slurm\n    versions: [\"" + tc.policy + "\"]\n")
			s1 := w.mustRun(c)
			if got := files(s1.New); !slices.Equal(got, tc.first) {
				t.Fatalf("first run wrote %v, want %v", got, tc.first)
			}
			if err := w.gh.AddRelease("cyclecloud-slurm", "4.1.0", "4.0.9"); err != nil {
				t.Fatal(err)
			}
			s2 := w.mustRun(c)
			if got := files(s2.New); !slices.Equal(got, []string{"slurm-4.1.0.tar"}) {
				t.Errorf("second run wrote %v, want exactly slurm-4.1.0.tar", got)
			}
			if len(s2.Unchanged) != tc.unchanged {
				t.Errorf("second run: %d unchanged, want %d", len(s2.Unchanged), tc.unchanged)
			}
			// Bundles that fell out of the policy stay, in the folder and the index.
			for _, f := range tc.first {
				if _, err := os.Stat(filepath.Join(w.out(), f)); err != nil {
					t.Errorf("%s gone after the second run: %v", f, err)
				}
			}
			ix, err := loadIndex(w.out())
			if err != nil {
				t.Fatal(err)
			}
			if len(ix.Bundles) != len(tc.first)+1 {
				t.Errorf("index lists %d bundles, want %d", len(ix.Bundles), len(tc.first)+1)
			}
		})
	}
}

func TestAssetChangedInPlace(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: slurm\n    versions: [\"3.0.12\"]\n")
	w.mustRun(c)
	ix, err := loadIndex(w.out())
	if err != nil {
		t.Fatal(err)
	}
	old := ix.Bundles[0]
	oldBytes, err := os.ReadFile(filepath.Join(w.out(), old.File))
	if err != nil {
		t.Fatal(err)
	}
	asset := old.Assets[0].Name
	if err := w.gh.ReplaceAsset("Azure/cyclecloud-slurm", "3.0.12", asset, []byte("rebuilt by the maintainers\n")); err != nil {
		t.Fatal(err)
	}

	s := w.mustRun(c)
	if got := files(s.New); !slices.Equal(got, []string{"slurm-3.0.12.r2.tar"}) {
		t.Fatalf("after the change the run wrote %v, want slurm-3.0.12.r2.tar", got)
	}
	if len(s.Changed) != 1 || !slices.Equal(s.Changed[0].Assets, []string{asset}) ||
		s.Changed[0].Previous != "slurm-3.0.12.tar" || s.Changed[0].File != "slurm-3.0.12.r2.tar" {
		t.Fatalf("changed = %+v, want asset %s, previous slurm-3.0.12.tar", s.Changed, asset)
	}
	wantMsg := "release Azure/cyclecloud-slurm@3.0.12 changed on GitHub after it was mirrored: assets " + asset + " differ"
	if s.Changed[0].Message != wantMsg {
		t.Errorf("message %q, want %q", s.Changed[0].Message, wantMsg)
	}
	var warned bool
	for _, l := range strings.Split(w.log.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "changed on GitHub after it was mirrored") && strings.Contains(l, asset) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no WARN line about the change in the log:\n%s", w.log.String())
	}
	if b, err := os.ReadFile(filepath.Join(w.out(), old.File)); err != nil || string(b) != string(oldBytes) {
		t.Errorf("the old bundle was touched (err %v)", err)
	}
	ix, err = loadIndex(w.out())
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Bundles) != 2 || ix.Bundles[1].Revision != 2 || ix.Bundles[1].Fingerprint == old.Fingerprint {
		t.Errorf("index after the change: %+v", ix.Bundles)
	}
	// The new bundle carries the new bytes.
	nb, err := os.Open(filepath.Join(w.out(), "slurm-3.0.12.r2.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	rep, err := staging.Verify(context.Background(), nb, staging.VerifyOptions{Allowed: w.allowed})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("rebuilt by the maintainers\n"))
	found := false
	for _, b := range rep.Manifest.Projects[0].Blobs {
		if b.Name == asset {
			found = b.SHA256 == hex.EncodeToString(sum[:])
		}
	}
	if !found {
		t.Errorf("the r2 bundle does not carry the replaced %s", asset)
	}

	// Once mirrored again, the release is up to date.
	s3 := w.mustRun(c)
	if !s3.NothingNew || len(s3.Changed) != 0 {
		t.Errorf("third run: nothing_new=%v changed=%v", s3.NothingNew, s3.Changed)
	}
}

func TestOverlappingRunsConflict(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: gridengine\n    versions: [latest]\n")
	// The first run stalls in its first download while holding the lock.
	w.gh.SetStall("*", 0, 20*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := w.run(ctx, c)
		done <- err
	}()
	// The lock file names its holder once the first run holds the lock.
	deadline := time.Now().Add(15 * time.Second)
	for {
		lock, err := LockPath(w.cache, w.out())
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(lock); strings.Contains(string(b), "pid=") {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("the first run never took the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let it get into its stalled download.
	time.Sleep(300 * time.Millisecond)

	s, err := w.run(context.Background(), c)
	// It failed fast: the first run, stalled until cancelled, is still going.
	select {
	case err1 := <-done:
		t.Errorf("the overlapping run waited for the first run to end (%v) instead of failing fast", err1)
		done <- err1
	default:
	}
	cancel()
	if err1 := <-done; err1 == nil {
		t.Error("the cancelled first run reported success")
	}
	if !errors.Is(err, staging.ErrConflict) {
		t.Fatalf("overlapping run: %v, want a conflict", err)
	}
	if !strings.Contains(err.Error(), "another ccmirror sync is running") || !strings.Contains(err.Error(), "pid ") {
		t.Errorf("conflict message does not say who holds the lock: %v", err)
	}
	if s != nil {
		t.Errorf("overlapping run returned a summary: %+v", s)
	}
	// The lock dies with its holder: the next run works.
	w.gh.SetStall("*", 0, 0)
	if s := w.mustRun(c); len(s.New) != 1 {
		t.Errorf("run after the conflict wrote %v", files(s.New))
	}
	if left, _ := filepath.Glob(filepath.Join(w.out(), ".ccmirror-sync-*")); len(left) != 0 {
		t.Errorf("leftovers of the cancelled run: %v", left)
	}
}

func TestPartialFailureKeepsGoing(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: gridengine\n    versions: [\"9.9.9\", latest]\n  - ref: pbspro\n    versions: [latest]\n")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	s, err := w.run(ctx, c)
	if !errors.Is(err, mirror.ErrUpstream) {
		t.Fatalf("err = %v, want an upstream error for the missing tag", err)
	}
	if !strings.Contains(err.Error(), "9.9.9") {
		t.Errorf("error does not name the missing tag: %v", err)
	}
	if got := files(s.New); !slices.Equal(got, []string{"gridengine-2.1.0.tar", "pbspro-2.0.25.tar"}) {
		t.Errorf("the other versions were not mirrored: %v", got)
	}
	if len(s.Failed) != 1 || s.Failed[0].Policy != "9.9.9" || s.Failed[0].Repository != "Azure/cyclecloud-gridengine" {
		t.Errorf("failed = %+v", s.Failed)
	}
}

func TestNewestReleases(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	rels := []mirror.Release{ // GitHub order is by creation, not publication
		{Tag: "5.0.0-rc1", Prerelease: true, PublishedAt: day(9)},
		{Tag: "4.1.0", Draft: true},
		{Tag: "4.0.0", PublishedAt: day(5)},
		{Tag: "3.9.1", PublishedAt: day(7)}, // a backport published later
		{Tag: "3.9.0", PublishedAt: day(3)},
	}
	tests := []struct {
		n    int
		want []string
	}{
		{1, []string{"4.0.0"}},
		{2, []string{"4.0.0", "3.9.1"}},
		{10, []string{"4.0.0", "3.9.1", "3.9.0", "5.0.0-rc1"}},
	}
	for _, tc := range tests {
		var got []string
		for _, r := range NewestReleases(rels, tc.n) {
			got = append(got, r.Tag)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("newest:%d = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestBundleNameNeverOverwrites(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: gridengine\n    versions: [latest]\n")
	if err := os.MkdirAll(w.out(), 0o755); err != nil {
		t.Fatal(err)
	}
	// A file someone put there by hand, not in the index.
	stray := filepath.Join(w.out(), "gridengine-2.1.0.tar")
	if err := os.WriteFile(stray, []byte("hand-made"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := w.mustRun(c)
	if got := files(s.New); !slices.Equal(got, []string{"gridengine-2.1.0.r2.tar"}) {
		t.Errorf("wrote %v, want gridengine-2.1.0.r2.tar beside the stray file", got)
	}
	if b, _ := os.ReadFile(stray); string(b) != "hand-made" {
		t.Error("the stray file was overwritten")
	}
}

func TestDamagedIndexIsNotOverwritten(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: gridengine\n    versions: [latest]\n")
	if err := os.MkdirAll(w.out(), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(w.out(), IndexName)
	if err := os.WriteFile(p, []byte(`{"schema":"ccmirror.index/v1","bundles":[{"file":"../x"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := w.run(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "unsafe") {
		t.Fatalf("err = %v, want the damaged index named", err)
	}
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "../x") {
		t.Error("the damaged index was overwritten")
	}
}

// TestSplitParts checks that with SplitSize every new bundle also gets
// signed parts beside it that join back to the very bundle the index names.
func TestSplitParts(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: Azure/cyclecloud-gridengine\n    versions: [\"2.1.0\"]\n")
	log := slog.New(slog.NewTextHandler(w.log, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	s, err := Run(ctx, c, Options{CacheDir: w.cache, Log: log, SplitSize: 8 << 10})
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, w.log.String())
	}
	if len(s.New) != 1 || s.New[0].Parts == "" {
		t.Fatalf("want one new bundle with parts, got %+v", s.New)
	}
	verify := func(msg, sig []byte) error {
		_, err := w.allowed.Verify(msg, sig, manifest.Namespace, time.Now())
		return err
	}
	joined := filepath.Join(w.dir, "joined.tar")
	if err := split.Join(ctx, s.New[0].Parts, joined, verify); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(joined)
	b, _ := os.ReadFile(s.New[0].Path)
	if !bytes.Equal(a, b) || len(a) <= 8<<10 {
		t.Errorf("parts join to %d bytes, bundle has %d; want equal and more than one part", len(a), len(b))
	}
}

// TestSweepAndLegacyLock: a run removes the temporaries an interrupted run
// left (index, signature and sequence file being written) and the lock
// file earlier versions kept in the output folder, unless an older
// ccmirror holds that lock now: then it is a conflict.
func TestSweepAndLegacyLock(t *testing.T) {
	w := newWorld(t)
	c := w.config("  - ref: gridengine\n    versions: [latest]\n")
	if err := os.MkdirAll(w.out(), 0o755); err != nil {
		t.Fatal(err)
	}
	left := []string{atomicfile.TempPrefix(SequenceName) + "123", atomicfile.TempPrefix(IndexName) + "456", atomicfile.TempPrefix(IndexSigName) + "789"}
	for _, n := range left {
		if err := os.WriteFile(filepath.Join(w.out(), n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	legacy := filepath.Join(w.out(), legacyLockName)
	l, err := flock.Acquire(context.Background(), legacy, flock.Holder{What: "(ccmirror sync)"}, flock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.run(context.Background(), c); !errors.Is(err, staging.ErrConflict) || !strings.Contains(err.Error(), "older ccmirror sync") {
		t.Errorf("run while an older ccmirror holds the output's lock: %v, want a conflict naming it", err)
	}
	l.Release()
	w.mustRun(c)
	for _, n := range append(left, legacyLockName) {
		if _, err := os.Stat(filepath.Join(w.out(), n)); err == nil {
			t.Errorf("%s is still in the output folder", n)
		}
	}
}
