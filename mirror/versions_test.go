package mirror

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRankReleases(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name string
		rels []Release
		want []string
	}{
		{"highest version, not the latest published",
			[]Release{{Tag: "3.0.13", PublishedAt: day(9)}, {Tag: "4.0.9", PublishedAt: day(5)}, {Tag: "3.0.12", PublishedAt: day(3)}},
			[]string{"4.0.9", "3.0.13", "3.0.12"}},
		{"numeric order", []Release{{Tag: "2.9.1"}, {Tag: "2.10.0"}, {Tag: "2.9.10"}}, []string{"2.10.0", "2.9.10", "2.9.1"}},
		{"prereleases count", []Release{{Tag: "2.0.25", Prerelease: true}, {Tag: "2.0.24", Prerelease: true}}, []string{"2.0.25", "2.0.24"}},
		{"drafts and dated tags never count",
			[]Release{{Tag: "5.0.0", Draft: true}, {Tag: "2024-12-03-bins"}, {Tag: "2023-03-29-bins"}, {Tag: "2.0.25", Prerelease: true}},
			[]string{"2.0.25"}},
		{"plain before suffixed", []Release{{Tag: "5.0.0-rc1"}, {Tag: "4.0.0"}, {Tag: "4.0.0-rc1"}, {Tag: "3.9.0"}},
			[]string{"4.0.0", "3.9.0", "5.0.0-rc1", "4.0.0-rc1"}},
		{"suffixed only", []Release{{Tag: "1.0.0-rc1"}, {Tag: "1.0.0-rc10"}, {Tag: "1.0.0-rc2"}}, []string{"1.0.0-rc10", "1.0.0-rc2", "1.0.0-rc1"}},
		{"v prefix and short versions", []Release{{Tag: "v1.2.0"}, {Tag: "1.10"}, {Tag: "v1.9.9"}}, []string{"1.10", "v1.9.9", "v1.2.0"}},
		{"equal versions: later publication first", []Release{{Tag: "1.2.0", PublishedAt: day(1)}, {Tag: "v1.2.0", PublishedAt: day(2)}}, []string{"v1.2.0", "1.2.0"}},
		{"nothing", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range RankReleases(tc.rels) {
				got = append(got, r.Tag)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("RankReleases = %v, want %v", got, tc.want)
			}
			for n := 0; n <= len(tc.want)+1; n++ {
				got := NewestReleases(tc.rels, n)
				if want := min(n, len(tc.want)); len(got) != want || (want > 0 && got[0].Tag != tc.want[0]) {
					t.Errorf("NewestReleases(%d) = %d releases, want the first %d of %v", n, len(got), want, tc.want)
				}
			}
		})
	}
}

func TestLatestReleaseNoVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		rels []Release
		want []string
	}{
		{"no releases", nil, []string{"Azure/x has no releases"}},
		{"dated and drafts only", []Release{{Tag: "2023-03-29-bins"}, {Tag: "nightly"}, {Tag: "9.9.9", Draft: true}},
			[]string{"Azure/x has no release tagged with a version", "found 3 release(s) tagged 2023-03-29-bins, nightly", "1 draft(s)"}},
		{"many", []Release{{Tag: "a"}, {Tag: "b"}, {Tag: "c"}, {Tag: "d"}, {Tag: "e"}, {Tag: "f"}, {Tag: "g"}},
			[]string{"tagged a, b, c, d, e and 2 more"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := LatestRelease("Azure/x", tc.rels)
			if rel != nil || !errors.Is(err, ErrUpstream) {
				t.Fatalf("LatestRelease = %v, %v; want an ErrUpstream error", rel, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

func TestResolutionNote(t *testing.T) {
	slurm, pbspro := Ref{Owner: "Azure", Repo: "cyclecloud-slurm"}, Ref{Owner: "Azure", Repo: "cyclecloud-pbspro"}
	for _, tc := range []struct {
		ref         Ref
		tag, marked string
		known       bool
		want        string
	}{
		{slurm, "4.0.9", "3.0.13", true, "slurm latest → 4.0.9 (highest version; GitHub marks 3.0.13 latest)"},
		{slurm, "4.0.9", "4.0.9", true, "slurm latest → 4.0.9 (highest version, also GitHub's latest)"},
		{pbspro, "2.0.25", "", true, "pbspro latest → 2.0.25 (highest version; GitHub marks no release latest)"},
		{pbspro, "2.0.25", "", false, "pbspro latest → 2.0.25 (highest version)"},
	} {
		if got := resolutionNote(tc.ref, tc.tag, tc.marked, tc.known); got != tc.want {
			t.Errorf("note = %q, want %q", got, tc.want)
		}
	}
}
