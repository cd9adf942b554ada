package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/transport/blob"
	"github.com/ccmirror/ccmirror/transport/blob/azuritetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	azuritetest.Stop()
	os.Exit(code)
}

// TestSplitBundle carries a bundle as parts, as on FAT32 sticks: fetch
// --split-size writes parts and a signed list, verify and install read them
// directly, a corrupt or missing part is named, and join gives back the
// original bytes.
func TestSplitBundle(t *testing.T) {
	gh, err := githubtest.NewServer(githubtest.Options{BlobSize: 20 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	key, allowed := testKeys(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "pbspro-2.0.25.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--sign-key", key, "--cache", filepath.Join(dir, "cache"),
		"--split-size", "100K", "-o", bundle, "pbspro@2.0.25")
	if _, err := os.Stat(bundle); err == nil {
		t.Error("fetch --split-size left the whole bundle beside its parts")
	}
	parts, _ := filepath.Glob(bundle + ".0*")
	if len(parts) < 3 {
		t.Fatalf("want at least 3 parts of 100K, got %v", parts)
	}
	if _, err := os.Stat(bundle + ".parts.sig"); err != nil {
		t.Errorf("no signed part list: %v", err)
	}
	mustRunCLI(t, "verify", "--allowed-signers", allowed, bundle+".001")
	owner, _, _ := stagingOwner(t)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	mustRunCLI(t, "install", "--allowed-signers", allowed, "--root", root, "--owner", owner, bundle+".parts")
	if _, err := os.Stat(filepath.Join(staging.ProjectsDir(root), "pbspro", "2.0.25", "project.ini")); err != nil {
		t.Errorf("install from parts staged nothing: %v", err)
	}

	// cat of the parts is the bundle join writes.
	var cat []byte
	for _, p := range parts {
		b, _ := os.ReadFile(p)
		cat = append(cat, b...)
	}
	joined := filepath.Join(dir, "joined.tar")
	mustRunCLI(t, "join", "--allowed-signers", allowed, "-o", joined, bundle+".parts")
	if b, _ := os.ReadFile(joined); !bytes.Equal(b, cat) {
		t.Error("join output differs from cat of the parts")
	}
	// verify reports the joined bundle's sha256, which the split reader
	// gives (every part checked) rather than a second hash of the bytes.
	catSum := sha256.Sum256(cat)
	for _, trust := range [][]string{{"--allowed-signers", allowed}, {"--insecure-skip-signature"}} {
		out := mustRunCLI(t, append(append([]string{"verify", "--json"}, trust...), bundle+".parts")...)
		var rep struct {
			BundleSHA256 string `json:"bundle_sha256"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.BundleSHA256 != hex.EncodeToString(catSum[:]) {
			t.Errorf("verify --json %v of the parts: bundle_sha256 %q (%v), want %x", trust, rep.BundleSHA256, err, catSum)
		}
	}

	// One corrupt part: verify, install and join name it and write nothing.
	second := parts[1]
	orig, _ := os.ReadFile(second)
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(second, bad, 0o644)
	root2 := filepath.Join(dir, "root2")
	os.MkdirAll(root2, 0o755)
	for _, args := range [][]string{
		{"verify", "--allowed-signers", allowed, bundle + ".001"},
		{"install", "--allowed-signers", allowed, "--root", root2, "--owner", owner, bundle + ".001"},
		{"join", "--allowed-signers", allowed, "-o", filepath.Join(dir, "j2.tar"), bundle + ".parts"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitVerify || !strings.Contains(stderr, filepath.Base(second)) {
			t.Errorf("%s with a corrupt part: exit %d, stderr %q; want exit 4 naming %s", args[0], code, stderr, filepath.Base(second))
		}
	}
	if entries, _ := os.ReadDir(staging.ProjectsDir(root2)); len(entries) != 0 {
		t.Error("install from a corrupt part wrote into staging")
	}
	if _, err := os.Stat(filepath.Join(dir, "j2.tar")); err == nil {
		t.Error("join from a corrupt part left an output file")
	}

	// A missing part is named before anything is read.
	os.WriteFile(second, orig, 0o644)
	os.Remove(parts[2])
	code, _, stderr := runCLI(t, "verify", "--allowed-signers", allowed, bundle+".001")
	if code != exitVerify || !strings.Contains(stderr, filepath.Base(parts[2])+": missing") {
		t.Errorf("verify with a missing part: exit %d, stderr %q", code, stderr)
	}
}

// TestAzureRoundTrip pushes a bundle to a real Azurite, pulls it back with
// verification, and installs straight from the blob URL.
func TestAzureRoundTrip(t *testing.T) {
	base := azuritetest.URL(t)
	dir, bundle, allowed := azureBundle(t, githubtest.Options{})
	container := base + "/cli-" + randomHex(5) + "/"
	if out := mustRunCLI(t, "push", bundle, container); !strings.Contains(out, "uploaded") {
		t.Errorf("push said %q", out)
	}
	url := container + "gridengine-2.1.0.tar"
	pulled := filepath.Join(dir, "pulled.tar")
	out := mustRunCLI(t, "pull", "--allowed-signers", allowed, url, "-o", pulled)
	if !strings.Contains(out, "signature and hashes verified") {
		t.Errorf("pull said %q", out)
	}
	if fileSHA256(t, pulled) != fileSHA256(t, bundle) {
		t.Error("pulled bundle differs from the pushed one")
	}

	// The blob records its SHA256SUMS's hash: pull proves the bundle
	// against it and hashes no byte twice (no whole-file sha256).
	var js struct {
		Pull   blob.PullResult `json:"pull"`
		Verify struct {
			Head string `json:"head_sha256"`
		} `json:"verify"`
	}
	if err := json.Unmarshal([]byte(mustRunCLI(t, "pull", "--json", "--allowed-signers", allowed, url, "-o", filepath.Join(dir, "again.tar"))), &js); err != nil {
		t.Fatal(err)
	}
	head := sumsSHA256(t, bundle)
	if js.Pull.HeadSHA256 != head || js.Verify.Head != head || js.Pull.SHA256 != "" || !js.Pull.Checked {
		t.Errorf("pull --json: %+v, verify head %s; want both heads %s and no whole-file sum", js.Pull, js.Verify.Head, head)
	}
	// A blob whose recorded head is not its bundle's is refused, signed
	// or not, and nothing of it stays.
	setMetadata(t, url, blob.MetaHeadSHA256, strings.Repeat("ab", 32))
	for _, args := range [][]string{{"--allowed-signers", allowed}, {}} {
		got := filepath.Join(dir, "swapped.tar")
		code, _, stderr := runCLI(t, append(append([]string{"pull"}, args...), url, "-o", got)...)
		if code != exitVerify || !strings.Contains(stderr, "SHA256SUMS sha256 "+head) {
			t.Errorf("pull %v of a blob recording another head: exit %d, %s", args, code, stderr)
		}
		if m, _ := filepath.Glob(got + "*"); len(m) != 0 {
			t.Errorf("pull %v of a blob recording another head left %v", args, m)
		}
	}
	setMetadata(t, url, blob.MetaHeadSHA256, head)

	owner, _, _ := stagingOwner(t)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	mustRunCLI(t, "install", "--allowed-signers", allowed, "--root", root, "--owner", owner, url)
	if _, err := os.Stat(filepath.Join(staging.ProjectsDir(root), "gridengine", "2.1.0", "project.ini")); err != nil {
		t.Errorf("install from a blob URL staged nothing: %v", err)
	}

	// A bundle signed by a key the server does not trust is pulled, found
	// wanting, and removed.
	_, otherAllowed := testKeys(t)
	code, _, stderr := runCLI(t, "pull", "--allowed-signers", otherAllowed, url, "-o", filepath.Join(dir, "untrusted.tar"))
	if code != exitVerify {
		t.Errorf("pull of an untrusted bundle: exit %d, want 4; %s", code, stderr)
	}
	for _, p := range []string{"untrusted.tar", "untrusted.tar" + blob.PartialSuffix, "untrusted.tar" + blob.PartialSuffix + blob.ETagSuffix} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("pull kept %s of a bundle that failed verification", p)
		}
	}
	if !strings.Contains(stderr, "removed") {
		t.Errorf("pull of an untrusted bundle does not say it removed it: %s", stderr)
	}

	// A blob that is no bundle at all fails as it arrives, and nothing stays.
	junk := filepath.Join(dir, "junk.tar")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a bundle\n"), 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "push", junk, container)
	code, _, stderr = runCLI(t, "pull", "--allowed-signers", allowed, container+"junk.tar", "-o", filepath.Join(dir, "junk-pulled.tar"))
	if code != exitVerify {
		t.Errorf("pull of a non-bundle: exit %d, want 4; %s", code, stderr)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "junk-pulled.tar*")); len(m) != 0 {
		t.Errorf("pull of a non-bundle left %v", m)
	}

	// A wrong account key is one clear line and exit 3.
	t.Setenv("AZURE_STORAGE_KEY", strings.Repeat("A", 86)+"==")
	code, _, stderr = runCLI(t, "pull", url, "-o", filepath.Join(dir, "nokey.tar"))
	if code != exitUpstream || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("pull with a wrong key: exit %d, stderr %q; want exit 3 and one line", code, stderr)
	}
}

// azureBundle readies a test that talks to Azurite with its account key
// alone (azureKeyOnly), and fetches
// gridengine 2.1.0 from a fake GitHub made with o into a signed bundle. It
// returns the test's folder, the bundle and the allowed_signers file.
func azureBundle(t *testing.T, o githubtest.Options) (dir, bundle, allowed string) {
	t.Helper()
	azureKeyOnly(t)
	gh, err := githubtest.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	key, allowed := testKeys(t)
	dir = t.TempDir()
	bundle = filepath.Join(dir, "gridengine-2.1.0.tar")
	mustRunCLI(t, "fetch", "--quiet", "--github-url", gh.URL(), "--sign-key", key, "--cache", filepath.Join(dir, "cache"), "-o", bundle, "gridengine@2.1.0")
	return dir, bundle, allowed
}

// azureKeyOnly leaves Azurite's account key as the test's only Azure
// credential: every other credential variable is emptied.
func azureKeyOnly(t *testing.T) {
	for _, k := range []string{blob.EnvConnectionString, "AZURE_STORAGE_ACCOUNT", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	t.Setenv("AZURE_STORAGE_KEY", azuritetest.Key)
}

// randomHex is n random bytes in hex: a container name no other run uses.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sumsSHA256 is the hex sha256 of the SHA256SUMS entry of the bundle at
// path, read with archive/tar.
func sumsSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "SHA256SUMS" {
		t.Fatalf("%s: first entry %v (%v), want SHA256SUMS", path, hdr, err)
	}
	h := sha256.New()
	io.Copy(h, tr)
	return hex.EncodeToString(h.Sum(nil))
}

// setMetadata sets one metadata key of the Azurite blob at url, keeping
// the others.
func setMetadata(t *testing.T, url, key, value string) {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential("devstoreaccount1", azuritetest.Key)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := azblobblob.NewClientWithSharedKeyCredential(url, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	props, err := bc.GetProperties(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]*string{key: &value}
	for k, v := range props.Metadata {
		if k = strings.ToLower(k); k != key {
			md[k] = v
		}
	}
	if _, err := bc.SetMetadata(context.Background(), md, nil); err != nil {
		t.Fatal(err)
	}
}
