package syncjob

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/mirror"
)

// manyVersions adds the releases 4.1.0 … 4.1.(n-1) of slurm (copies of
// 4.0.9) to the fake GitHub and returns their tags.
func manyVersions(t *testing.T, w *world, n int) []string {
	t.Helper()
	var tags []string
	for i := range n {
		tag := fmt.Sprintf("4.1.%d", i)
		if err := w.gh.AddRelease("cyclecloud-slurm", tag, "4.0.9"); err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
	return tags
}

// TestManyVersionsKeepConfigOrder: the versions of a run are looked up and
// fetched concurrently, yet what the run reports and records follows the
// config, run after run; a missing tag among them fails alone and is
// named.
func TestManyVersionsKeepConfigOrder(t *testing.T) {
	w := newWorld(t)
	tags := manyVersions(t, w, 7)
	// Not in version order, with a missing tag in the middle, a policy
	// naming tags already pinned, and a second project.
	pinned := []string{tags[3], "3.0.12", tags[0], tags[6], "9.9.9", tags[1], "4.0.9", tags[5], tags[2], tags[4]}
	c := w.config("  - ref: slurm\n    versions: [\"" + strings.Join(pinned, "\", \"") + "\", \"newest:2\"]\n" +
		"  - ref: gridengine\n    versions: [latest]\n")
	var want []string
	for _, tag := range pinned {
		if tag != "9.9.9" {
			want = append(want, "slurm-"+tag+".tar")
		}
	}
	want = append(want, "gridengine-2.1.0.tar")

	for run := range 3 { // the first writes every bundle; the others are idle
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		s, err := w.run(ctx, c)
		cancel()
		if !errors.Is(err, mirror.ErrUpstream) || !strings.Contains(err.Error(), "9.9.9") {
			t.Fatalf("run %d: err = %v, want an upstream error naming 9.9.9", run, err)
		}
		if len(s.Failed) != 1 || s.Failed[0].Policy != "9.9.9" || s.Failed[0].Repository != "Azure/cyclecloud-slurm" {
			t.Errorf("run %d: failed = %+v", run, s.Failed)
		}
		var got []string
		if run == 0 {
			got = files(s.New)
			if len(s.Unchanged) != 0 {
				t.Errorf("first run: %d unchanged", len(s.Unchanged))
			}
		} else {
			for _, v := range s.Unchanged {
				got = append(got, v.File)
			}
			if len(s.New) != 0 || s.Downloaded != 0 {
				t.Errorf("idle run %d wrote %v, downloaded %d bytes", run, files(s.New), s.Downloaded)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("run %d: bundles %v, want %v", run, got, want)
		}
		// The newest:2 policy joins the pinned entries of its tags.
		for _, v := range s.Unchanged {
			if v.Tag == tags[6] && !slices.Equal(v.Policies, []string{tags[6], "newest:2"}) {
				t.Errorf("run %d: %s policies %v", run, v.Tag, v.Policies)
			}
		}
		ix, err := loadIndex(w.out())
		if err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, e := range ix.Bundles {
			listed = append(listed, e.File)
		}
		if !slices.Equal(listed, want) {
			t.Errorf("run %d: index lists %v, want %v", run, listed, want)
		}
	}
}

// TestCancelledManyVersionsLeaveNothing: a run cancelled while its
// fetches are under way ends with the cancellation and leaves no bundle,
// temporary file or index behind.
func TestCancelledManyVersionsLeaveNothing(t *testing.T) {
	w := newWorld(t)
	tags := manyVersions(t, w, 8)
	c := w.config("  - ref: slurm\n    versions: [\"" + strings.Join(tags, "\", \"") + "\"]\n")
	w.gh.SetBandwidth(32<<10, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := w.run(ctx, c)
		done <- err
	}()
	for w.gh.AssetBytesServed() == 0 {
		select {
		case err := <-done:
			t.Fatalf("the run ended before any asset byte was sent: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the cancellation", err)
	}
	ents, err := os.ReadDir(w.out())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("the cancelled run left %s", filepath.Join(w.out(), e.Name()))
	}
}
