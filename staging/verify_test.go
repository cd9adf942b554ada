package staging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/manifest"
)

func TestVerifyGoodBundle(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	p := demoProject(t, "1.0.0", "one")
	bundle := makeBundle(t, []testProject{p}, k.signer)
	rep, err := Verify(context.Background(), bytes.NewReader(bundle), VerifyOptions{Allowed: trustedAllowed(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Signer == nil || rep.Signer.Principal != "admin@example.com" || !strings.HasPrefix(rep.Signer.Fingerprint, "SHA256:") || rep.Signer.KeyType != "ssh-ed25519" {
		t.Errorf("signer %+v", rep.Signer)
	}
	wantBytes := int64(len(p.src))
	for _, b := range p.blobs {
		wantBytes += int64(len(b))
	}
	if rep.Files != 3 || rep.Bytes != wantBytes {
		t.Errorf("files %d bytes %d, want 3 and %d", rep.Files, rep.Bytes, wantBytes)
	}
	if rep.BundleSHA256 != sum(bundle) {
		t.Errorf("bundle sha256 %s, want %s", rep.BundleSHA256, sum(bundle))
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"good signature from admin@example.com", rep.Signer.Fingerprint, "demo 1.0.0", "verified 3 payload files"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("verify text lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Signer struct {
			Principal string `json:"principal"`
		} `json:"signer"`
		Files int `json:"files"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Signer.Principal != "admin@example.com" || back.Files != 3 {
		t.Errorf("verify JSON: %s (%v)", js.String(), err)
	}
}

func TestVerifyUnsigned(t *testing.T) {
	t.Parallel()
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, nil)
	_, err := Verify(context.Background(), bytes.NewReader(bundle), VerifyOptions{Allowed: trustedAllowed(t)})
	if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "unsigned") {
		t.Fatalf("unsigned: %v, want ErrVerify saying unsigned", err)
	}
	rep, err := Verify(context.Background(), bytes.NewReader(bundle), VerifyOptions{InsecureSkipSignature: true})
	if err != nil || !rep.Insecure || rep.Signer != nil {
		t.Fatalf("insecure verify: %+v %v", rep, err)
	}
	var text bytes.Buffer
	_ = rep.WriteText(&text)
	if !strings.Contains(text.String(), "NOT checked") {
		t.Errorf("insecure verify text does not say so: %s", text.String())
	}
}

// headOnly serves the first n bytes, then fails: Inspect must not need
// more.
type headOnly struct {
	r io.Reader
}

func (h *headOnly) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("inspect read past the head of the bundle")
	}
	return n, err
}

func TestInspectReadsOnlyTheHead(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	p := demoProject(t, "1.0.0", "one")
	bundle := makeBundle(t, []testProject{p}, k.signer)
	// Cut the bundle right after manifest.json.
	es := readTar(t, bundle)
	head := writeTar(t, es[:3])
	head = head[:len(head)-1024] // drop the end-of-archive blocks
	rep, err := Inspect(&headOnly{io.MultiReader(bytes.NewReader(head), bytes.NewReader(make([]byte, 512)))})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Signed || rep.Signature == nil || rep.Signature.Namespace != "ccmirror" || !strings.HasPrefix(rep.Signature.Fingerprint, "SHA256:") {
		t.Errorf("signature %+v", rep.Signature)
	}
	if len(rep.Projects) != 1 || rep.Projects[0].Name != "demo" || len(rep.Projects[0].Blobs) != 2 || rep.Files != 3 {
		t.Errorf("projects %+v files %d", rep.Projects, rep.Files)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ccmirror.bundle/v1", "2025-03-01T12:00:00Z", "demo 1.0.0", "shared-1.0.whl", "release 1.0.0", "not checked"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("inspect text lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil || !strings.Contains(js.String(), `"signed": true`) {
		t.Errorf("inspect JSON: %s %v", js.String(), err)
	}

	unsigned, err := Inspect(bytes.NewReader(makeBundle(t, []testProject{p}, nil)))
	if err != nil || unsigned.Signed {
		t.Errorf("unsigned inspect: %+v %v", unsigned, err)
	}
	if _, err := Inspect(bytes.NewReader([]byte("not a bundle at all"))); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("garbage: %v, want ErrVerify", err)
	}
}

// TestInstallWarnsAboutSkippedSignerLines: a cert-authority line in
// allowed_signers is skipped, and the install says so.
func TestInstallWarnsAboutSkippedSignerLines(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	e := newEnv(t)
	e.opts.Verify.Allowed = allowed(t, "ca@example.com cert-authority "+k.pubLine+"\nadmin@example.com "+k.pubLine+"\n")
	rep := e.mustInstall(makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer))
	if w := strings.Join(rep.Warnings, "\n"); !strings.Contains(w, "allowed_signers allowed_signers:1: skipped: cert-authority") {
		t.Errorf("warnings %q do not name the skipped line", rep.Warnings)
	}
}

// TestVerifyKnownSum: with o.BundleSHA256 the stream's own sum is asked
// for only once the stream is read to its end, and reported as it is (no
// second hash of the bytes); its error fails verification.
func TestVerifyKnownSum(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)
	r := bytes.NewReader(bundle)
	const claimed = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	o := VerifyOptions{Allowed: trustedAllowed(t)}
	o.BundleSHA256 = func() (string, error) {
		if r.Len() != 0 {
			return "", errors.New("asked before the end of the stream")
		}
		return claimed, nil
	}
	rep, err := Verify(context.Background(), r, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BundleSHA256 != claimed {
		t.Errorf("bundle sha256 %s, want the stream's own %s", rep.BundleSHA256, claimed)
	}
	failing := errors.New("part 2 did not match")
	o.BundleSHA256 = func() (string, error) { return "", failing }
	if _, err := Verify(context.Background(), bytes.NewReader(bundle), o); !errors.Is(err, failing) {
		t.Errorf("Verify with a failing stream sum: %v, want %v", err, failing)
	}
}

// TestVerifySkipBundleSum: with o.SkipBundleSHA256 the report names the
// bundle by its SHA256SUMS alone (TestInstallRejectsTamperedBundles shows every
// tampered bundle still fails with it).
func TestVerifySkipBundleSum(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	good := makeBundle(t, []testProject{demoProject(t, "2.0.0", "two")}, k.signer)
	o := VerifyOptions{Allowed: trustedAllowed(t), SkipBundleSHA256: true}
	rep, err := Verify(context.Background(), bytes.NewReader(good), o)
	if err != nil {
		t.Fatal(err)
	}
	var sums []byte
	for _, e := range readTar(t, good) {
		if e.hdr.Name == manifest.SumsName {
			sums = e.body
		}
	}
	if rep.BundleSHA256 != "" || rep.HeadSHA256 != sum(sums) {
		t.Errorf("bundle sha256 %q, head %s; want none and %s", rep.BundleSHA256, rep.HeadSHA256, sum(sums))
	}
	full, err := Verify(context.Background(), bytes.NewReader(good), VerifyOptions{Allowed: trustedAllowed(t)})
	if err != nil || full.HeadSHA256 != rep.HeadSHA256 || full.BundleSHA256 != sum(good) {
		t.Errorf("without the option: %+v (%v)", full, err)
	}
}
