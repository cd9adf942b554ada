package staging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ccmirror/ccmirror/internal/asynchash"
	"github.com/ccmirror/ccmirror/internal/ctxio"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
)

// VerifyOptions says whom to trust.
type VerifyOptions struct {
	// Allowed is the parsed allowed_signers file.
	Allowed *trust.AllowedSigners
	// InsecureSkipSignature accepts unsigned or untrusted bundles (labs
	// only); hashes are still checked.
	InsecureSkipSignature bool
	// Now is the time validity windows are checked at; nil means time.Now.
	Now func() time.Time
	// BundleSHA256, when not nil, says the stream knows its own SHA-256:
	// called once the stream was read to io.EOF, it returns the hex sha256
	// of every byte read (transport.Bundle.SHA256 of a split bundle, whose
	// reader checked each part against the signed part list). Verify then
	// reports it as the bundle's hash instead of hashing every byte again.
	BundleSHA256 func() (string, error)
	// SkipBundleSHA256 is for a caller that identifies the bundle by
	// VerifyReport.HeadSHA256 (pull, when the blob records it): the whole
	// bundle is not hashed, each byte only by its payload's check.
	SkipBundleSHA256 bool
}

// insecureWarning is logged, loudly, whenever a signature is not checked.
const insecureWarning = "SIGNATURE NOT CHECKED (--insecure-skip-signature): anyone could have made or changed this bundle; use this only in a lab"

// checkSignature verifies the signature over the raw bytes of SHA256SUMS,
// before they or manifest.json are parsed (manifest.NewCheckedReader). The
// lines allowed_signers skipped are passed to warn. It fails closed (ErrVerify) on unsigned or badly signed
// bundles unless o.InsecureSkipSignature.
func checkSignature(sums, sig []byte, o VerifyOptions, log *slog.Logger, warn func(string)) (*SignerInfo, error) {
	if o.InsecureSkipSignature {
		log.Warn(insecureWarning)
		return nil, nil
	}
	if sig == nil {
		return nil, fmt.Errorf("bundle is unsigned (no %s); sign it with fetch --sign-key, or use --insecure-skip-signature in a lab: %w", manifest.SignatureName, manifest.ErrVerify)
	}
	if o.Allowed == nil {
		return nil, fmt.Errorf("no allowed_signers file to check the signature against (pass --allowed-signers FILE or set CCMIRROR_ALLOWED_SIGNERS): %w", manifest.ErrVerify)
	}
	for _, w := range o.Allowed.Warnings() {
		warn("allowed_signers " + w)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	id, err := o.Allowed.Verify(sums, sig, manifest.Namespace, now())
	if err != nil {
		if !errors.Is(err, manifest.ErrVerify) {
			err = fmt.Errorf("%w: %w", manifest.ErrVerify, err)
		}
		return nil, err
	}
	return &SignerInfo{Principal: id.Principal, Fingerprint: id.Fingerprint, KeyType: id.KeyType}, nil
}

// Verify streams a whole bundle once: it checks the signature over
// SHA256SUMS first, then every payload's size and hash as it reads it, and
// computes the bundle's own SHA-256 (or, with o.BundleSHA256, takes it from
// the stream once read to its end). Every failure wraps manifest.ErrVerify
// (or is ctx's error).
func Verify(ctx context.Context, r io.Reader, o VerifyOptions) (*VerifyReport, error) {
	return verifyLogged(ctx, r, o, slog.New(slog.DiscardHandler))
}

func verifyLogged(ctx context.Context, r io.Reader, o VerifyOptions, log *slog.Logger) (*VerifyReport, error) {
	var body bundleBody
	switch {
	case o.SkipBundleSHA256:
		body = &knownSum{r: ctxio.NewReader(ctx, r), of: func() (string, error) { return "", nil }}
	case o.BundleSHA256 != nil:
		body = &knownSum{r: ctxio.NewReader(ctx, r), of: o.BundleSHA256}
	default:
		a := asynchash.NewReader(ctxio.NewReader(ctx, r))
		defer a.Stop()
		body = a
	}
	var signer *SignerInfo
	var head [sha256.Size]byte
	rd, err := manifest.NewCheckedReader(body, func(sums, sig []byte) (err error) {
		head = sha256.Sum256(sums)
		signer, err = checkSignature(sums, sig, o, log, func(w string) { log.Warn(w) })
		return err
	})
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{HeadSHA256: hex.EncodeToString(head[:]), Signer: signer, Insecure: o.InsecureSkipSignature, Manifest: rd.Manifest()}
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		n, err := io.Copy(io.Discard, p)
		if err != nil {
			if errors.Is(err, manifest.ErrVerify) {
				return nil, err // names the entry already
			}
			return nil, fmt.Errorf("%s: %w", p.File.Path, err)
		}
		rep.Files++
		rep.Bytes += n
	}
	sum, err := drainDigest(body)
	if err != nil {
		return nil, err
	}
	rep.BundleSHA256 = sum
	return rep, nil
}

// drainDigest reads whatever the manifest reader left (the tar's zero
// blocks) into the bundle hash and returns it.
func drainDigest(body bundleBody) (string, error) {
	sum, err := body.Sum()
	if err != nil {
		return "", fmt.Errorf("reading the end of the bundle: %w", err)
	}
	return sum, nil
}

// Inspect reads only the head of a bundle (SHA256SUMS, the signature and
// manifest.json) and describes it, without reading the payload or checking
// the signature.
func Inspect(r io.Reader) (*InspectReport, error) {
	rd, err := manifest.NewReader(r)
	if err != nil {
		return nil, err
	}
	m := rd.Manifest()
	rep := &InspectReport{Schema: m.Schema, Created: m.Created, Tool: m.Tool, Projects: m.Projects}
	for _, f := range m.Files() {
		rep.Files++
		rep.Bytes += f.Size
	}
	if sig := rd.Signature(); sig != nil {
		rep.Signed = true
		rep.Signature = describeSignature(sig)
	}
	return rep, nil
}

func describeSignature(armored []byte) *SignatureInfo {
	s, err := sshsig.Unarmor(armored)
	if err != nil {
		return &SignatureInfo{Error: err.Error()}
	}
	if s.PublicKey == nil {
		return &SignatureInfo{Error: "signature carries no public key"}
	}
	return &SignatureInfo{
		KeyType:       s.PublicKey.Type(),
		Fingerprint:   ssh.FingerprintSHA256(s.PublicKey),
		Namespace:     s.Namespace,
		HashAlgorithm: string(s.HashAlgorithm),
	}
}
