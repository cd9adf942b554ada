package staging

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/internal/flock"
)

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestResolveOwner(t *testing.T) {
	t.Parallel()
	uid, gid := os.Getuid(), os.Getgid()
	cases := []struct {
		spec     string
		uid, gid int
		err      string
	}{
		{spec: fmt.Sprintf("%d:%d", uid, gid), uid: uid, gid: gid},
		{spec: "root:root", uid: 0, gid: 0},
		{spec: "root", uid: 0, gid: 0},
		{spec: "0:0", uid: 0, gid: 0},
		{spec: "1234", err: "needs a group"},
		{spec: ":x", err: "want USER:GROUP"},
		{spec: "x:", err: "want USER:GROUP"},
		{spec: "ccm_nobody_here:root", err: "user ccm_nobody_here does not exist"},
		{spec: "root:ccm_nogroup_here", err: "group ccm_nogroup_here does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			o, err := ResolveOwner(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || o.UID != tc.uid || o.GID != tc.gid {
				t.Errorf("%+v %v, want %d:%d", o, err, tc.uid, tc.gid)
			}
		})
	}
}

func TestCheckCanChown(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		if err := checkCanChown(Owner{Spec: "x", UID: 4242, GID: 4242}); err != nil {
			t.Errorf("root may chown to anyone: %v", err)
		}
		return
	}
	if err := checkCanChown(Owner{Spec: "me", UID: os.Geteuid(), GID: os.Getegid()}); err != nil {
		t.Errorf("own user: %v", err)
	}
	if err := checkCanChown(Owner{Spec: "cycle_server:cycle_server", UID: os.Geteuid() + 1, GID: 0}); err == nil || !strings.Contains(err.Error(), "run install as root") {
		t.Errorf("other user: %v", err)
	}
}

func TestDiffTrees(t *testing.T) {
	t.Parallel()
	f := func(p, h string) treeEntry {
		return treeEntry{Path: p, Type: typeFile, Mode: "0644", Size: 1, SHA256: h}
	}
	built := []treeEntry{f("a", "1"), f("b", "2"), f("c", "3")}
	staged := []treeEntry{f("a", "1"), f("b", "x"), f("d", "4")}
	items, same := diffTrees(built, staged, false)
	got := map[string]Action{}
	for _, it := range items {
		got[it.Path] = it.Action
	}
	want := map[string]Action{"a": ActionSkip, "b": ActionConflict, "c": ActionAdd, "d": ActionConflict}
	if same || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("diff %v same %v, want %v", got, same, want)
	}
	items, _ = diffTrees(built, staged, true)
	for _, it := range items {
		if it.Path == "d" && it.Action != ActionRemove || it.Path == "b" && it.Action != ActionReplace {
			t.Errorf("force: %s %s", it.Path, it.Action)
		}
	}
	modeOnly := []treeEntry{{Path: "a", Type: typeFile, Mode: "0755", Size: 1, SHA256: "1"}}
	if _, same := diffTrees(modeOnly, []treeEntry{f("a", "1")}, false); same {
		t.Errorf("a mode change must not count as identical")
	}
	if _, same := diffTrees(built, built, false); !same {
		t.Errorf("identical trees reported different")
	}
}

// TestLockNoteOfEarlierVersions: notes written before internal/flock
// (key bundle=) still name their holder.
func TestLockNoteOfEarlierVersions(t *testing.T) {
	t.Parallel()
	since := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	back := flock.ParseHolder([]byte("pid=1234\ntime=" + since.Format(time.RFC3339Nano) + "\nbundle=slurm-2.5.0.tar\n"))
	if back.PID != 1234 || !back.Since.Equal(since) || back.What != "slurm-2.5.0.tar" {
		t.Errorf("old note parsed as %+v", back)
	}
	if s := back.String(); !strings.Contains(s, "pid 1234") || !strings.Contains(s, "slurm-2.5.0.tar") {
		t.Errorf("holder text %q", s)
	}
	if s := flock.ParseHolder(nil).String(); !strings.Contains(s, "another process") {
		t.Errorf("empty holder text %q", s)
	}
}

// FuzzReadJournal: a torn or corrupt journal (a crash mid-append) must
// parse without panicking.
func FuzzReadJournal(f *testing.F) {
	f.Add([]byte(`{"op":"mkdir","path":"/nonexistent/ccm/a"}` + "\n" + `{"op":"add","path":"/nonexistent/ccm/b","ino":7}` + "\n" + `{"op":"com`))
	f.Add([]byte(`{"op":"commit"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := t.TempDir() + "/journal"
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		ops, _, err := readJournal(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if op.Op == opCommit {
				t.Errorf("commit returned as an operation")
			}
		}
	})
}

// FuzzParseRecord: records are read back from disk, where anything may have
// happened to them; parsing must not panic.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"schema":"ccmirror.install-record/v1","projects":[{"name":"a","blobs":[{"path":"x","type":"blob","action":"add"}]}]}`))
	f.Add([]byte(`{"schema":"other"}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := parseRecord(b)
		if err == nil && rec.Schema != RecordSchema {
			t.Errorf("accepted schema %q", rec.Schema)
		}
	})
}
