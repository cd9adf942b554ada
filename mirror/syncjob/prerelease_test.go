package syncjob

import (
	"slices"
	"testing"
)

// cyclecloud-pbspro publishes every release as a prerelease, next to
// dated -bins releases: "newest:2" mirrors its two highest versions and
// "latest" its highest, where GitHub's "latest" has no answer.
func TestPrereleaseOnlyProject(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   []string
	}{
		{"newest:2", []string{"pbspro-2.0.26.tar", "pbspro-2.0.25.tar"}},
		{"latest", []string{"pbspro-2.0.26.tar"}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			w := newWorld(t)
			if err := w.gh.AddRelease("cyclecloud-pbspro", "2.0.26", "2.0.25"); err != nil {
				t.Fatal(err)
			}
			c := w.config("  - ref: pbspro\n    versions: [\"" + tc.policy + "\"]\n")
			s := w.mustRun(c)
			if got := files(s.New); !slices.Equal(got, tc.want) {
				t.Fatalf("%s wrote %v, want %v", tc.policy, got, tc.want)
			}
			if len(s.Failed) != 0 {
				t.Errorf("failures: %+v", s.Failed)
			}
		})
	}
}
