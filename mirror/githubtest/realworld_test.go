package githubtest

import (
	"strings"
	"testing"
)

// A download host behind a proxy that strips conditional headers answers
// a matching If-None-Match with the whole body; by default it says 304.
func TestIgnoreIfNoneMatch(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		s := newTestServer(t, Options{IgnoreIfNoneMatch: ignore})
		a := assetInfo(t, s, "cyclecloud-hpcpack", "2.1.2", "cyclecloud-hpcpack-pkg-2.1.2.zip")
		resp, body := get(t, a.URL, "If-None-Match", `"`+a.SHA256+`"`)
		want, n := 304, 0
		if ignore {
			want, n = 200, 4096
		}
		if resp.StatusCode != want || len(body) != n {
			t.Errorf("ignore=%v: %d with %d bytes, want %d with %d", ignore, resp.StatusCode, len(body), want, n)
		}
	}
}

// The world's quirks: -bins releases carry only their blobs, without
// digests; MoveTag changes the commit and so the archive.
func TestBinsReleasesAndMoveTag(t *testing.T) {
	s := newTestServer(t, Options{})
	_, js := get(t, s.URL()+"repos/Azure/cyclecloud-pbspro/releases/tags/2024-12-03-bins")
	if !strings.Contains(string(js), `"name":"pbspro-client-18.1.4-0.x86_64.rpm"`) || !strings.Contains(string(js), `"digest":null`) ||
		!strings.Contains(string(js), `"prerelease":true`) || strings.Count(string(js), `"browser_download_url"`) != 1 {
		t.Errorf("-bins release JSON: %.600s", js)
	}
	_, js = get(t, s.URL()+"repos/Azure/cyclecloud-pbspro/releases/tags/2.0.25")
	if strings.Contains(string(js), `"digest":null`) || strings.Contains(string(js), "pbspro-client-18.1.4") {
		t.Errorf("2.0.25 JSON carries a -bins blob or lacks digests: %.600s", js)
	}
	old, _ := s.Commit("cyclecloud-slurm", "3.0.13")
	before, _ := s.Archive("cyclecloud-slurm", "3.0.13")
	moved, err := s.MoveTag("cyclecloud-slurm", "3.0.13")
	if err != nil || moved == old || len(moved) != 40 {
		t.Fatalf("MoveTag = %q, %v (was %s)", moved, err, old)
	}
	if c, _ := s.Commit("cyclecloud-slurm", "3.0.13"); c != moved {
		t.Errorf("Commit after MoveTag = %s, want %s", c, moved)
	}
	after, _ := s.Archive("cyclecloud-slurm", "3.0.13")
	if entries := readTarGz(t, after); entries[0].hdr.PAXRecords["comment"] != moved || string(before) == string(after) {
		t.Error("the archive does not follow the moved tag")
	}
	if _, js := get(t, s.URL()+"repos/Azure/cyclecloud-slurm/releases/latest"); !strings.Contains(string(js), `"tag_name":"3.0.13"`) {
		t.Errorf("the moved backport is no longer GitHub's latest: %.300s", js)
	}
	if _, err := s.MoveTag("cyclecloud-slurm", "9.9.9"); err == nil {
		t.Error("MoveTag of a missing tag succeeded")
	}
}
