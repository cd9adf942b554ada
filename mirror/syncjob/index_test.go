package syncjob

import (
	"slices"
	"strings"
	"testing"

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

func TestParseIndexRejects(t *testing.T) {
	good := `{"schema":"ccmirror.index/v1","bundles":[{"project":"slurm","version":"1","repository":"a/b","tag":"1","file":"slurm-1.tar","size":1,"revision":1,
"sha256":"0000000000000000000000000000000000000000000000000000000000000000","assets_fingerprint":"FP","assets":[]}]}`
	good = strings.Replace(good, "FP", Fingerprint(nil), 1)
	if _, err := ParseIndex([]byte(good)); err != nil {
		t.Fatalf("good index: %v", err)
	}
	tests := []struct{ name, from, to, want string }{
		{"schema", "ccmirror.index/v1", "ccmirror.index/v2", "schema"},
		{"path", `"slurm-1.tar"`, `"../slurm-1.tar"`, "unsafe"},
		{"dot file", `"slurm-1.tar"`, `".lock"`, "unsafe"},
		{"hash", `"0000000000000000000000000000000000000000000000000000000000000000"`, `"00"`, "sha256"},
		{"revision", `"revision":1`, `"revision":0`, "revision"},
		{"fingerprint", `"assets":[]`, `"assets":[{"name":"x","size":1}]`, "fingerprint"},
		{"trailing", `]}]}`, `]}]}{}`, "trailing"},
	}
	for _, tc := range tests {
		_, err := ParseIndex([]byte(strings.Replace(good, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
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
