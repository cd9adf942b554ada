package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/internal/flock"
	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/index"
	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"
	"github.com/ccmirror/ccmirror/staging"
)

func run(t *testing.T, o Options) (*Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return Run(ctx, o)
}

// TestInstallsWhatTheServerWants: CycleCloud knows demo 1.0.0 and 2.0.0
// and other 1.0; the index offers demo 1.0.0, 2.0.0, 3.0.0 and other 1.0.
// By default the highest known version of each project is installed (demo
// 2.0.0, other 1.0), never demo 3.0.0 which CycleCloud does not know; with
// AllVersions demo 1.0.0 too. A second run is idle.
func TestInstallsWhatTheServerWants(t *testing.T) {
	m := newMirror(t)
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		m.add("demo", v)
	}
	m.add("other", "1.0")
	m.publish(7, nil)
	s := newServer(t, "demo@1.0.0", "demo@2.0.0", "other@1.0")

	rep, err := run(t, s.opts(m))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := items(rep.Install); !slices.Equal(got, []string{"demo@2.0.0", "other@1.0"}) {
		t.Errorf("installed %v, want demo@2.0.0 and other@1.0", got)
	}
	for _, it := range rep.Install {
		if it.Action != ActionInstalled {
			t.Errorf("%s %s: action %q", it.Project, it.Version, it.Action)
		}
	}
	if !s.staged("demo", "2.0.0") || !s.staged("other", "1.0") || s.staged("demo", "1.0.0") || s.staged("demo", "3.0.0") {
		t.Error("staging holds the wrong versions")
	}
	if rep.Status != StatusInstalled || rep.Index.Sequence != 7 || rep.Index.Previous != nil || !rep.Index.Recorded {
		t.Errorf("report: status %s index %+v", rep.Status, rep.Index)
	}
	if st, err := os.Stat(SequencesPath(s.root)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("sequence file: %v %v, want mode 0600", st, err)
	}

	// Every version: demo 1.0.0 joins, oldest first would put it before
	// 2.0.0, which is staged already and left alone.
	o := s.opts(m)
	o.AllVersions = true
	rep, err = run(t, o)
	if err != nil {
		t.Fatalf("update --all-versions: %v", err)
	}
	if got := items(rep.Install); !slices.Equal(got, []string{"demo@1.0.0"}) || !s.staged("demo", "1.0.0") {
		t.Errorf("--all-versions installed %v", got)
	}
	if got := items(rep.Staged); !slices.Contains(got, "demo@2.0.0") {
		t.Errorf("--all-versions: staged %v", got)
	}

	// Idle: nothing downloaded, nothing in the staging tree or the state
	// changed.
	before := tree(t, staging.ProjectsDir(s.root))
	seqBefore, _ := os.ReadFile(SequencesPath(s.root))
	rep, err = run(t, o)
	if err != nil {
		t.Fatalf("idle update: %v", err)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	if rep.Status != StatusUpToDate || len(rep.Install) != 0 || rep.Downloaded != 0 || !strings.Contains(out.String(), "up to date: 3 project versions") {
		t.Errorf("idle run: status %s install %v downloaded %d\n%s", rep.Status, items(rep.Install), rep.Downloaded, out.String())
	}
	if d := diffTrees(before, tree(t, staging.ProjectsDir(s.root))); len(d) > 0 {
		t.Errorf("idle run changed %v", d)
	}
	if seqAfter, _ := os.ReadFile(SequencesPath(s.root)); !bytes.Equal(seqBefore, seqAfter) {
		t.Error("idle run rewrote the sequence file")
	}
}

// TestOrderOldestFirst: with every version wanted, versions install oldest
// first (numeric order: 2.9 before 2.10).
func TestOrderOldestFirst(t *testing.T) {
	m := newMirror(t)
	for _, v := range []string{"2.10", "2.9", "1.0"} {
		m.add("demo", v)
	}
	m.publish(1, nil)
	s := newServer(t, "demo@2.10", "demo@2.9", "demo@1.0")
	o := s.opts(m)
	o.AllVersions = true
	rep, err := run(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := items(rep.Install); !slices.Equal(got, []string{"demo@1.0", "demo@2.9", "demo@2.10"}) {
		t.Errorf("order %v", got)
	}
}

// TestRollbackRefused: after sequence 5 was accepted, a validly signed
// index with sequence 4 is refused naming both numbers, with nothing
// changed; the same sequence with other content is refused too; the same
// index again is fine; a newer one is accepted.
func TestRollbackRefused(t *testing.T) {
	m := newMirror(t)
	m.add("demo", "1.0.0")
	old := m.publish(4, nil)
	oldSig, _ := os.ReadFile(filepath.Join(m.dir, index.SigName))
	m.add("demo", "2.0.0")
	m.publish(5, nil)
	s := newServer(t, "demo@2.0.0")
	if _, err := run(t, s.opts(m)); err != nil {
		t.Fatal(err)
	}

	// The stale media: index 4, validly signed, wanting demo 1.0.0.
	s.knows(t, "demo@1.0.0")
	m.write(index.Name, old)
	m.write(index.SigName, oldSig)
	before := tree(t, staging.ProjectsDir(s.root))
	seqBefore, _ := os.ReadFile(SequencesPath(s.root))
	rep, err := run(t, s.opts(m))
	if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "sequence 4") || !strings.Contains(err.Error(), "sequence 5") {
		t.Fatalf("rolled-back index: err %v, want ErrVerify naming 4 and 5", err)
	}
	if rep.Status != StatusRefused || s.staged("demo", "1.0.0") {
		t.Errorf("rolled-back index: status %s, demo 1.0.0 staged %v", rep.Status, s.staged("demo", "1.0.0"))
	}
	if d := diffTrees(before, tree(t, staging.ProjectsDir(s.root))); len(d) > 0 {
		t.Errorf("refused index changed %v", d)
	}
	if seqAfter, _ := os.ReadFile(SequencesPath(s.root)); !bytes.Equal(seqBefore, seqAfter) {
		t.Error("refused index changed the sequence file")
	}
	// A dry run refuses it as well.
	o := s.opts(m)
	o.DryRun = true
	if _, err := run(t, o); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("dry run of a rolled-back index: %v", err)
	}

	// Sequence 5 again, but other content.
	m.add("demo", "1.0.1")
	m.publish(5, nil)
	if _, err := run(t, s.opts(m)); !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "other content") {
		t.Errorf("same sequence, other content: %v", err)
	}
	// A newer index is accepted and reports the previous number.
	m.publish(6, nil)
	rep, err = run(t, s.opts(m))
	if err != nil || rep.Index.Previous == nil || *rep.Index.Previous != 5 || !s.staged("demo", "1.0.0") {
		t.Errorf("newer index: %v, %+v", err, rep.Index)
	}
	// Another key keeps its own count.
	other := trusttest.NewKey(t, "mirror2@example")
	m2 := &mirrorDir{t: t, dir: m.dir, key: other, allowed: other.Allowed(t), ix: m.ix}
	m2.publish(1, nil)
	o = s.opts(m2)
	if rep, err := run(t, o); err != nil || rep.Index.Previous != nil {
		t.Errorf("index from a second key with a lower sequence: %v", err)
	}
}

// TestRefusedIndexes: unsigned, tampered and untrusted indexes, and
// bundles that differ from what the index says, are refused with
// ErrVerify and nothing written.
func TestRefusedIndexes(t *testing.T) {
	stranger := trusttest.NewKey(t, "stranger@example")
	tests := []struct {
		name  string
		spoil func(m *mirrorDir)
		want  string
		state bool // the state folder may exist (the index itself was fine)
	}{
		{"unsigned", func(m *mirrorDir) { os.Remove(filepath.Join(m.dir, index.SigName)) }, "unsigned", false},
		{"tampered", func(m *mirrorDir) {
			b, _ := os.ReadFile(filepath.Join(m.dir, index.Name))
			m.write(index.Name, bytes.Replace(b, []byte(`"sequence": 3`), []byte(`"sequence": 9`), 1))
		}, "bad signature", false},
		{"untrusted key", func(m *mirrorDir) { m.publish(3, stranger.Signer) }, "not in allowed_signers", false},
		{"bundle differs from the index", func(m *mirrorDir) {
			p := filepath.Join(m.dir, "demo-2.0.0.tar")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, "the signed index says", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMirror(t)
			m.add("demo", "2.0.0")
			m.publish(3, nil)
			tc.spoil(m)
			s := newServer(t, "demo@2.0.0")
			rep, err := run(t, s.opts(m))
			if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrVerify mentioning %q", err, tc.want)
			}
			if s.staged("demo", "2.0.0") {
				t.Error("demo 2.0.0 staged anyway")
			}
			if ents, _ := os.ReadDir(staging.ProjectsDir(s.root)); len(ents) != 0 {
				t.Errorf("staging written: %v", ents)
			}
			if _, err := os.Stat(staging.StateDir(s.root)); !tc.state && err == nil {
				t.Error("a refused index created the state folder")
			}
			if !tc.state && rep.Status != StatusRefused {
				t.Errorf("status %s", rep.Status)
			}
		})
	}
}

// TestNotOffered: a wanted version the index lacks is listed and the run
// ends with ErrUpstream, after installing what is offered.
func TestNotOffered(t *testing.T) {
	m := newMirror(t)
	m.add("demo", "2.0.0")
	m.publish(1, nil)
	s := newServer(t, "demo@2.0.0", "other@4.2")
	rep, err := run(t, s.opts(m))
	if !errors.Is(err, errclass.ErrUpstream) || !strings.Contains(err.Error(), "other 4.2") {
		t.Fatalf("err = %v, want ErrUpstream naming other 4.2", err)
	}
	if got := items(rep.NotOffered); !slices.Equal(got, []string{"other@4.2"}) || rep.Status != StatusIncomplete || !s.staged("demo", "2.0.0") {
		t.Errorf("not offered %v, status %s, demo staged %v", got, rep.Status, s.staged("demo", "2.0.0"))
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	if !strings.Contains(out.String(), "not offered:") || !strings.Contains(out.String(), "other 4.2") {
		t.Errorf("text:\n%s", out.String())
	}
}

// TestDryRun prints the plan and changes nothing, not even the state.
func TestDryRun(t *testing.T) {
	m := newMirror(t)
	m.add("demo", "1.0.0")
	m.add("demo", "2.0.0")
	m.publish(2, nil)
	s := newServer(t, "demo@1.0.0")
	if _, err := run(t, s.opts(m)); err != nil {
		t.Fatal(err)
	}
	s.knows(t, "demo@1.0.0", "demo@2.0.0", "gone@1")
	m.publish(3, nil)
	before := tree(t, s.root)
	o := s.opts(m)
	o.DryRun, o.AllVersions = true, true
	rep, err := run(t, o)
	if !errors.Is(err, errclass.ErrUpstream) {
		t.Fatalf("dry run: %v, want ErrUpstream for gone@1", err)
	}
	if d := diffTrees(before, tree(t, s.root)); len(d) > 0 {
		t.Errorf("dry run changed %v", d)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	for _, want := range []string{"install:", "demo 2.0.0", "already staged:", "demo 1.0.0", "not offered:", "gone 1", "nothing was changed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run text lacks %q:\n%s", want, out.String())
		}
	}
	if rep.Index.Recorded || rep.Install[0].Action != ActionInstall {
		t.Errorf("dry run report: %+v", rep)
	}
}

// TestMaxAge warns about an old index, naming its age.
func TestMaxAge(t *testing.T) {
	m := newMirror(t)
	m.add("demo", "1.0.0")
	m.ix.Updated = time.Now().Add(-45 * 24 * time.Hour).UTC().Truncate(time.Second)
	m.publish(1, nil)
	s := newServer(t, "demo@1.0.0")
	rep, err := run(t, s.opts(m))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "45 days old") || !strings.Contains(rep.Warnings[0], "may have stopped") {
		t.Errorf("warnings %q", rep.Warnings)
	}
	o := s.opts(m)
	o.MaxAge = 60 * 24 * time.Hour
	if rep, _ := run(t, o); len(rep.Warnings) != 0 {
		t.Errorf("within max age: warnings %q", rep.Warnings)
	}
}

// TestLegacyIndex: an index without a sequence is accepted as 0 once,
// with a warning; any other unsequenced index is then refused.
func TestLegacyIndex(t *testing.T) {
	m := newMirror(t)
	m.add("demo", "1.0.0")
	m.publish(0, nil)
	s := newServer(t, "demo@1.0.0")
	rep, err := run(t, s.opts(m))
	if err != nil || rep.Index.Sequence != 0 || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "no sequence") {
		t.Fatalf("legacy index: %v %+v", err, rep)
	}
	m.add("demo", "1.0.1")
	m.publish(0, nil)
	if _, err := run(t, s.opts(m)); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("second different legacy index: %v", err)
	}
}

// TestUpdateLocked: a second update while one runs fails with ErrConflict.
func TestUpdateLocked(t *testing.T) {
	m := newMirror(t)
	m.add("demo", "1.0.0")
	m.publish(1, nil)
	s := newServer(t, "demo@1.0.0")
	os.MkdirAll(stateDir(s.root), 0o700)
	l, err := flock.Acquire(context.Background(), filepath.Join(stateDir(s.root), LockName), flock.Holder{What: "test"}, flock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := run(t, s.opts(m)); !errors.Is(err, errclass.ErrConflict) || s.staged("demo", "1.0.0") {
		t.Errorf("locked: %v", err)
	}
}

// cutSource is a Downloader over a folder that, while cut > 0, stops every
// download after cut bytes, leaving the partial file as an interrupted
// transfer does; later downloads resume from it.
type cutSource struct {
	Folder
	cut   int64
	calls []Transfer
}

func (c *cutSource) Download(ctx context.Context, name, path string) (Transfer, error) {
	rc, size, err := c.Open(ctx, name)
	if err != nil {
		return Transfer{}, err
	}
	defer rc.Close()
	partial := path + ".partial"
	var tr Transfer
	if st, err := os.Stat(partial); err == nil && st.Size() <= size {
		tr.ResumedFrom = st.Size()
	}
	if _, err := io.CopyN(io.Discard, rc, tr.ResumedFrom); err != nil {
		return tr, err
	}
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return tr, err
	}
	defer f.Close()
	var r io.Reader = rc
	if c.cut > 0 {
		r = io.LimitReader(rc, c.cut)
	}
	n, err := io.Copy(f, r)
	tr.Downloaded = n
	c.calls = append(c.calls, tr)
	if err != nil {
		return tr, err
	}
	if tr.ResumedFrom+n < size {
		return tr, fmt.Errorf("connection reset after %d bytes: %w", tr.ResumedFrom+n, errclass.ErrUpstream)
	}
	return tr, os.Rename(partial, path)
}

// TestDownloaderResumes: a Downloader's bundle goes into the state
// folder; an interrupted download is resumed by the next run at the offset
// it reached, the bundle is checked and installed, and the download is
// removed afterwards.
func TestDownloaderResumes(t *testing.T) {
	m := newMirror(t)
	e := m.add("demo", "1.0.0")
	m.publish(1, nil)
	s := newServer(t, "demo@1.0.0")
	src := &cutSource{Folder: Folder(m.dir), cut: e.Size / 3}
	o := s.opts(m)
	o.Source = src
	rep, err := run(t, o)
	if !errors.Is(err, errclass.ErrUpstream) || s.staged("demo", "1.0.0") {
		t.Fatalf("interrupted download: %v", err)
	}
	if rep.Downloaded != e.Size/3 {
		t.Errorf("interrupted run downloaded %d, want %d", rep.Downloaded, e.Size/3)
	}
	src.cut = 0
	rep, err = run(t, o)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	tr := rep.Install[0].Transfer
	if tr == nil || tr.ResumedFrom != e.Size/3 || tr.Downloaded != e.Size-e.Size/3 || rep.Downloaded != tr.Downloaded {
		t.Errorf("resumed transfer %+v (total %d), want resumed from %d and %d more bytes", tr, rep.Downloaded, e.Size/3, e.Size-e.Size/3)
	}
	if !s.staged("demo", "1.0.0") {
		t.Error("not installed after the resumed download")
	}
	if ents, _ := os.ReadDir(downloadsDir(stateDir(s.root))); len(ents) != 0 {
		t.Errorf("downloads left after install: %v", ents)
	}
	// A download that does not match the index is removed and refused.
	m.add("demo", "1.0.1")
	m.publish(2, nil)
	s.knows(t, "demo@1.0.1")
	p := filepath.Join(m.dir, "demo-1.0.1.tar")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, append(b[:len(b)-1:len(b)-1], b[len(b)-1]^1), 0o644)
	if _, err := run(t, o); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("bad download: %v", err)
	}
	if ents, _ := os.ReadDir(downloadsDir(stateDir(s.root))); len(ents) != 0 {
		t.Errorf("a bad download was kept: %v", ents)
	}
}

// TestBundleHoldsOtherVersion: a bundle whose bytes match the index but
// which carries another project version than the index says is refused.
func TestBundleHoldsOtherVersion(t *testing.T) {
	m := newMirror(t)
	m.add("demo", "1.0.0")
	e := m.add("demo", "2.0.0")
	// The 2.0.0 entry points at the 1.0.0 bundle, with its hash.
	b, _ := os.ReadFile(filepath.Join(m.dir, "demo-1.0.0.tar"))
	m.write(e.File, b)
	m.ix.Bundles[1].Size, m.ix.Bundles[1].SHA256 = int64(len(b)), sum(b)
	m.publish(1, nil)
	s := newServer(t, "demo@2.0.0")
	if _, err := run(t, s.opts(m)); !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "holds demo 1.0.0") {
		t.Errorf("err = %v", err)
	}
	if s.staged("demo", "1.0.0") || s.staged("demo", "2.0.0") {
		t.Error("something was staged")
	}
}

// TestStateDirChosenAndChecked: update keeps its sequences in the state
// folder it is given, and refuses one that another account could write,
// with nothing staged and nothing recorded.
func TestStateDirChosenAndChecked(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the state folder must be root's own")
	}
	m := newMirror(t)
	m.add("demo", "1.0.0")
	m.publish(3, nil)

	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, "demo@1.0.0")
	o := s.opts(m)
	o.StateDir = filepath.Join(open, "state")
	if _, err := run(t, o); err == nil || !strings.Contains(err.Error(), open) {
		t.Fatalf("update with a world-writable state folder: %v, want a refusal naming %s", err, open)
	}
	if s.staged("demo", "1.0.0") {
		t.Error("a refused update staged a version")
	}
	if _, err := os.Stat(filepath.Join(o.StateDir, Dir, SequencesName)); err == nil {
		t.Error("a refused update recorded a sequence")
	}

	o.StateDir = filepath.Join(t.TempDir(), "state")
	if _, err := run(t, o); err != nil {
		t.Fatalf("update with its own state folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.StateDir, Dir, SequencesName)); err != nil {
		t.Errorf("the sequence is not kept in the chosen state folder: %v", err)
	}
	if !s.staged("demo", "1.0.0") {
		t.Error("demo 1.0.0 not staged")
	}
}
