package index

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"
)

const vectorDir = "../../testdata/index-v1"

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVector checks the committed vector, made with ssh-keygen: it verifies
// against its allowed_signers, parses to expected.json, and a changed byte
// or a changed sequence no longer verifies.
func TestVector(t *testing.T) {
	allowed, err := trust.LoadAllowedSigners(filepath.Join(vectorDir, "allowed_signers"))
	if err != nil {
		t.Fatal(err)
	}
	data, sig := readVector(t, Name), readVector(t, SigName)
	ix, id, err := Open(data, sig, allowed, time.Time{})
	if err != nil {
		t.Fatalf("vector does not open: %v", err)
	}
	var want struct {
		Signer    string    `json:"signer"`
		Principal string    `json:"principal"`
		Sequence  int64     `json:"sequence"`
		Updated   time.Time `json:"updated"`
		Bundles   []struct {
			Project, Version, File, SHA256 string
			Revision                       int
			Size                           int64
		} `json:"bundles"`
	}
	if err := json.Unmarshal(readVector(t, "expected.json"), &want); err != nil {
		t.Fatal(err)
	}
	if id.Fingerprint != want.Signer || id.Principal != want.Principal {
		t.Errorf("signed by %s (%s), want %s (%s)", id.Fingerprint, id.Principal, want.Signer, want.Principal)
	}
	if ix.Sequence != want.Sequence || !ix.Updated.Equal(want.Updated) {
		t.Errorf("sequence %d updated %s, want %d %s", ix.Sequence, ix.Updated, want.Sequence, want.Updated)
	}
	if len(ix.Bundles) != len(want.Bundles) {
		t.Fatalf("%d bundles, want %d", len(ix.Bundles), len(want.Bundles))
	}
	for i, w := range want.Bundles {
		e := ix.Bundles[i]
		if e.Project != w.Project || e.Version != w.Version || e.File != w.File || e.SHA256 != w.SHA256 || e.Revision != w.Revision || e.Size != w.Size {
			t.Errorf("bundle %d = %+v, want %+v", i, e, w)
		}
	}
	// Marshal reproduces the signed bytes exactly: the writer's output is
	// what the vector documents.
	if out, err := ix.Marshal(); err != nil || string(out) != string(data) {
		t.Errorf("Marshal does not reproduce the vector (err %v)", err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"lower sequence", `"sequence": 42`, `"sequence": 41`},
		{"other bundle hash", "9f86d0", "9f86d1"},
	} {
		bad := strings.Replace(string(data), tc.from, tc.to, 1)
		if _, _, err := Open([]byte(bad), sig, allowed, time.Time{}); !errors.Is(err, manifest.ErrVerify) {
			t.Errorf("%s: a changed index still opens: %v", tc.name, err)
		}
	}
	if path, err := exec.LookPath("ssh-keygen"); err == nil {
		cmd := exec.Command(path, "-Y", "verify", "-f", filepath.Join(vectorDir, "allowed_signers"), "-I", want.Principal,
			"-n", manifest.Namespace, "-s", filepath.Join(vectorDir, SigName))
		cmd.Stdin = strings.NewReader(string(data))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ssh-keygen -Y verify rejects the vector: %v: %s", err, out)
		}
	}
}

// TestLegacyVector: an index written before the sequence field existed
// verifies and parses with sequence 0.
func TestLegacyVector(t *testing.T) {
	allowed, err := trust.LoadAllowedSigners(filepath.Join(vectorDir, "allowed_signers"))
	if err != nil {
		t.Fatal(err)
	}
	ix, _, err := Open(readVector(t, "legacy-index.json"), readVector(t, "legacy-index.json.sig"), allowed, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Sequence != 0 || len(ix.Bundles) != 2 {
		t.Errorf("legacy index: sequence %d, %d bundles; want 0 and 2", ix.Sequence, len(ix.Bundles))
	}
}

func TestVerifyRefuses(t *testing.T) {
	k := trusttest.NewKey(t, "mirror@example")
	other := trusttest.NewKey(t, "someone@else")
	data := readVector(t, Name)
	sig, err := k.Signer.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, _ := other.Signer.Sign(data)
	wrongNS, _ := k.Signer.SignNamespace(data, "ccmirror-request")
	tests := []struct {
		name string
		data []byte
		sig  []byte
		want string
	}{
		{"unsigned", data, nil, "unsigned"},
		{"tampered", append(append([]byte{}, data...), ' '), sig, "bad signature"},
		{"untrusted key", data, otherSig, "not in allowed_signers"},
		{"other namespace", data, wrongNS, "namespace"},
		{"garbage signature", data, []byte("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"), "signature"},
		{"huge signature", data, make([]byte, MaxSigSize+1), "more than"},
		{"huge index", make([]byte, MaxSize+1), sig, "more than"},
	}
	for _, tc := range tests {
		_, err := Verify(tc.data, tc.sig, k.Allowed(t), time.Time{})
		if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrVerify mentioning %q", tc.name, err, tc.want)
		}
	}
	if id, err := Verify(data, sig, k.Allowed(t), time.Time{}); err != nil || id.Fingerprint != trust.Fingerprint(k.Signer.PublicKey()) {
		t.Errorf("good signature: %v, %+v", err, id)
	}
	// A signed index that does not parse is a verification failure.
	junk := []byte(`{"schema":"ccmirror.index/v1","sequence":1,"updated":"2026-01-01T00:00:00Z","bundles":[],"extra":1}`)
	junkSig, _ := k.Signer.Sign(junk)
	if _, _, err := Open(junk, junkSig, k.Allowed(t), time.Time{}); !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "extra") {
		t.Errorf("signed unparsable index: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	good := `{"schema":"ccmirror.index/v1","sequence":3,"updated":"2026-01-01T00:00:00Z","bundles":[{"project":"slurm","version":"1","repository":"a/b","tag":"1","commit":"c","file":"slurm-1.tar","size":1,"revision":1,
"sha256":"0000000000000000000000000000000000000000000000000000000000000000","created":"2026-01-01T00:00:00Z","assets_fingerprint":"FP","assets":[]}]}`
	good = strings.Replace(good, "FP", Fingerprint(nil), 1)
	ix, err := Parse([]byte(good))
	if err != nil {
		t.Fatalf("good index: %v", err)
	}
	if ix.Sequence != 3 || ix.Offer("slurm", "1") == nil || ix.Offer("slurm", "2") != nil || !ix.HasFile("slurm-1.tar") {
		t.Errorf("good index read wrong: %+v", ix)
	}
	second := strings.Replace(good, `]}]}`, `]},{"project":"slurm","version":"1","repository":"a/b","tag":"1","commit":"c","file":"slurm-1.r2.tar","size":1,"revision":1,
"sha256":"0000000000000000000000000000000000000000000000000000000000000000","created":"2026-01-01T00:00:00Z","assets_fingerprint":"FP","assets":[]}]}`, 1)
	second = strings.Replace(second, "FP", Fingerprint(nil), 1)
	tests := []struct{ name, doc, from, to, want string }{
		{"schema", good, "ccmirror.index/v1", "ccmirror.index/v2", "schema"},
		{"unknown field", good, `"sequence":3`, `"sequence":3,"sequense":4`, "unknown field"},
		{"unknown entry field", good, `"revision":1`, `"revision":1,"url":"x"`, "unknown field"},
		{"negative sequence", good, `"sequence":3`, `"sequence":-1`, "negative sequence"},
		{"fractional sequence", good, `"sequence":3`, `"sequence":3.5`, "sequence"},
		{"no time", good, `"updated":"2026-01-01T00:00:00Z",`, ``, "updated"},
		{"path", good, `"slurm-1.tar"`, `"../slurm-1.tar"`, "unsafe"},
		{"dot file", good, `"slurm-1.tar"`, `".lock"`, "unsafe"},
		{"project name", good, `"project":"slurm"`, `"project":"../x"`, "project name"},
		{"repository", good, `"a/b"`, `"ab"`, "repository"},
		{"tag", good, `"tag":"1"`, `"tag":"a..b"`, "tag"},
		{"control character", good, `"commit":"c"`, `"commit":"c\u001b[2J"`, "commit"},
		{"hash", good, `"0000000000000000000000000000000000000000000000000000000000000000"`, `"00"`, "sha256"},
		{"size", good, `"size":1`, `"size":-1`, "negative size"},
		{"revision", good, `"revision":1`, `"revision":0`, "revision"},
		{"fingerprint", good, `"assets":[]`, `"assets":[{"name":"x","size":1}]`, "fingerprint"},
		{"same revision twice", second, "", "", "listed twice"},
		{"trailing", good, `]}]}`, `]}]}{}`, "trailing"},
		{"not an object", `[]`, "", "", "index"},
	}
	for _, tc := range tests {
		doc := tc.doc
		if tc.from != "" {
			doc = strings.Replace(doc, tc.from, tc.to, 1)
		}
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	if _, err := Parse(make([]byte, MaxSize+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized index: %v", err)
	}
}

func TestFingerprintAndDiff(t *testing.T) {
	a := []AssetPrint{{Name: "a.rpm", Size: 10, Digest: "sha256:aa"}, {Name: "b.whl", Size: 20, ID: 2}}
	reordered := []AssetPrint{a[1], a[0]}
	if Fingerprint(a) != Fingerprint(reordered) || DiffAssets(a, reordered) != nil {
		t.Error("order changes the fingerprint")
	}
	changed := []AssetPrint{a[0], {Name: "b.whl", Size: 20, ID: 3}, {Name: "c", Size: 1}}
	if Fingerprint(a) == Fingerprint(changed) {
		t.Error("a new asset id does not change the fingerprint")
	}
	if got := DiffAssets(a, changed); strings.Join(got, ",") != "b.whl,c" {
		t.Errorf("diff %v", got)
	}
}
