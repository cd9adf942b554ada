package split

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/manifest"
)

const bundleName = "slurm-2.5.0.tar"

// testSigner signs like manifest/trust does: armored sshsig, sha512, namespace ccmirror.
type testSigner struct{ s ssh.Signer }

func (t testSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := sshsig.Sign(bytes.NewReader(msg), t.s, sshsig.HashSHA512, "ccmirror")
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}

type failSigner struct{}

func (failSigner) Sign([]byte) ([]byte, error) { return nil, errors.New("agent refused") }

func newKey(t *testing.T) (testSigner, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testSigner{s}, s.PublicKey()
}

// verifier accepts only signatures by pub in namespace ccmirror.
func verifier(pub ssh.PublicKey) func(msg, sig []byte) error {
	return func(msg, sig []byte) error {
		s, err := sshsig.Unarmor(sig)
		if err != nil {
			return fmt.Errorf("bad signature: %w", err)
		}
		if err := sshsig.Verify(bytes.NewReader(msg), s, pub, s.HashAlgorithm, "ccmirror"); err != nil {
			return fmt.Errorf("bad signature: %w", err)
		}
		return nil
	}
}

// writeBundle writes size pseudo-random bytes to dir/bundleName.
func writeBundle(t *testing.T, dir string, size int64) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	r := mrand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)})
	r.Read(b)
	p := filepath.Join(dir, bundleName)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// catParts concatenates the parts in shell-glob order, like `cat slurm-2.5.0.tar.0*`.
func catParts(t *testing.T, dir string) []byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, bundleName+".[0-9]*"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	var all []byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// splitFixture splits a fresh bundle of size bytes into partSize parts, signed,
// into its own folder, and returns that folder, the bundle bytes and the public key.
func splitFixture(t *testing.T, size, partSize int64) (string, []byte, ssh.PublicKey) {
	t.Helper()
	src := t.TempDir()
	p, data := writeBundle(t, src, size)
	out := t.TempDir()
	signer, pub := newKey(t)
	if _, err := Split(context.Background(), p, out, partSize, signer); err != nil {
		t.Fatalf("Split: %v", err)
	}
	return out, data, pub
}

func TestSplitJoinRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		size      int64
		partSize  int64
		wantCount int
	}{
		{"empty bundle", 0, 1000, 1},
		{"smaller than a part", 999, 1000, 1},
		{"exactly one part", 1000, 1000, 1},
		{"exact multiple", 3000, 1000, 3},
		{"remainder", 3007, 1000, 4},
		{"one byte over", 1001, 1000, 2},
		{"parts larger than the copy buffer", 3<<20 + 5, 1<<20 + 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			src := t.TempDir()
			p, data := writeBundle(t, src, tt.size)
			out := t.TempDir()
			signer, pub := newKey(t)
			l, err := Split(ctx, p, out, tt.partSize, signer)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if l.Count != tt.wantCount || len(l.Parts) != tt.wantCount {
				t.Fatalf("count %d (%d parts), want %d", l.Count, len(l.Parts), tt.wantCount)
			}
			if l.Size != tt.size || l.SHA256 != hexSum(data) || l.Bundle != bundleName || l.PartSize != tt.partSize {
				t.Errorf("list header = %+v", l)
			}
			want := []string{bundleName + ".parts", bundleName + ".parts.sig"}
			for i := 1; i <= tt.wantCount; i++ {
				want = append(want, fmt.Sprintf("%s.%03d", bundleName, i))
			}
			slices.Sort(want)
			if got := dirNames(t, out); !slices.Equal(got, want) {
				t.Errorf("files written = %v, want %v", got, want)
			}
			if got := catParts(t, out); !bytes.Equal(got, data) {
				t.Fatalf("cat of parts differs from the bundle (%d vs %d bytes)", len(got), len(data))
			}
			for _, part := range l.Parts {
				b, err := os.ReadFile(filepath.Join(out, part.Name))
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(b)) != part.Size || hexSum(b) != part.SHA256 {
					t.Errorf("%s: on disk %d bytes %s, list says %d bytes %s", part.Name, len(b), hexSum(b), part.Size, part.SHA256)
				}
			}
			// The list on disk is what Split returned, and the signature covers it.
			lb, err := os.ReadFile(filepath.Join(out, bundleName+".parts"))
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseList(lb)
			if err != nil {
				t.Fatalf("ParseList of written list: %v", err)
			}
			if fmt.Sprint(parsed) != fmt.Sprint(l) {
				t.Errorf("list on disk %+v, returned %+v", parsed, l)
			}

			for _, in := range []string{bundleName + ".parts", bundleName + ".001"} {
				joined := filepath.Join(t.TempDir(), "joined.tar")
				if err := Join(ctx, filepath.Join(out, in), joined, verifier(pub)); err != nil {
					t.Fatalf("Join(%s): %v", in, err)
				}
				got, err := os.ReadFile(joined)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Errorf("Join(%s) output differs from the bundle", in)
				}
				if names := dirNames(t, filepath.Dir(joined)); !slices.Equal(names, []string{"joined.tar"}) {
					t.Errorf("Join left %v", names)
				}

				rc, ol, err := Open(ctx, filepath.Join(out, in), verifier(pub))
				if err != nil {
					t.Fatalf("Open(%s): %v", in, err)
				}
				got, err = io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Fatalf("Open(%s) read: %v", in, err)
				}
				if !bytes.Equal(got, data) || ol.SHA256 != l.SHA256 {
					t.Errorf("Open(%s) stream differs from the bundle", in)
				}
			}
		})
	}
}

func TestSplitDefaultDirAndResplit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, data := writeBundle(t, dir, 2500)
	signer, pub := newKey(t)
	if _, err := Split(ctx, p, "", 1000, signer); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, bundleName+".003")); err != nil {
		t.Fatalf("parts not written beside the bundle: %v", err)
	}
	// Splitting again unsigned must not leave the old signature beside the new list.
	if _, err := Split(ctx, p, "", 2000, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, bundleName+".parts.sig")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale signature still present: %v", err)
	}
	out := filepath.Join(dir, "joined")
	if err := Join(ctx, filepath.Join(dir, bundleName+".parts"), out, nil); err != nil {
		t.Fatalf("unsigned Join with nil verify: %v", err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("joined bytes differ")
	}
	err := Join(ctx, filepath.Join(dir, bundleName+".parts"), out+"2", verifier(pub))
	if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "missing signature") {
		t.Errorf("unsigned Join with verify: %v, want missing signature", err)
	}
}

func TestCorruptPart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt string
		at      int
	}{
		{"first byte of the first part", ".001", 0},
		{"middle part", ".002", 500},
		{"last byte of the last part", ".004", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, data, pub := splitFixture(t, 3007, 1000)
			part := filepath.Join(dir, bundleName+tc.corrupt)
			b, err := os.ReadFile(part)
			if err != nil {
				t.Fatal(err)
			}
			b[tc.at] ^= 0x40
			if err := os.WriteFile(part, b, 0o644); err != nil {
				t.Fatal(err)
			}
			wantMsg := bundleName + tc.corrupt + ": sha256 mismatch"

			outDir := t.TempDir()
			out := filepath.Join(outDir, bundleName)
			err = Join(context.Background(), filepath.Join(dir, bundleName+".parts"), out, verifier(pub))
			if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), wantMsg) {
				t.Fatalf("Join: %v, want ErrVerify naming %q", err, wantMsg)
			}
			if names := dirNames(t, outDir); len(names) != 0 {
				t.Errorf("Join left %v after a corrupt part", names)
			}

			rc, _, err := Open(context.Background(), filepath.Join(dir, bundleName+".001"), verifier(pub))
			if err != nil {
				t.Fatalf("Open: %v (the size is right, so only streaming can tell)", err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), wantMsg) {
				t.Fatalf("Open read: %v, want ErrVerify naming %q", err, wantMsg)
			}
			// The error comes as soon as the bad part ends, not later.
			end := map[string]int{".001": 1000, ".002": 2000, ".004": 3007}[tc.corrupt]
			if len(got) != end {
				t.Errorf("read %d bytes before the error, want exactly to the end of the part (%d)", len(got), end)
			}
			if !bytes.Equal(got[:end-1000+tc.at], data[:end-1000+tc.at]) {
				t.Error("bytes before the corruption differ")
			}
			if _, err := rc.Read(make([]byte, 10)); !errors.Is(err, manifest.ErrVerify) {
				t.Errorf("Read after the failure: %v, want the same ErrVerify", err)
			}
		})
	}
}

func TestMissingOrWrongSizePartsNamedBeforeWriting(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"one missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, bundleName+".003"))
		}, []string{bundleName + ".003: missing"}},
		{"missing and truncated", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, bundleName+".002"))
			os.Truncate(filepath.Join(dir, bundleName+".004"), 3)
		}, []string{bundleName + ".002: missing", bundleName + ".004: size 3, want 7", "2 of 4 parts"}},
		{"too long", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, bundleName+".001"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("x"))
			f.Close()
		}, []string{bundleName + ".001: size 1001, want 1000"}},
		{"a folder in place of a part", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, bundleName+".002"))
			os.Mkdir(filepath.Join(dir, bundleName+".002"), 0o755)
		}, []string{bundleName + ".002: not a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _, pub := splitFixture(t, 3007, 1000)
			tt.break_(t, dir)
			outDir := t.TempDir()
			err := Join(context.Background(), filepath.Join(dir, bundleName+".parts"), filepath.Join(outDir, "out.tar"), verifier(pub))
			if !errors.Is(err, manifest.ErrVerify) {
				t.Fatalf("Join: %v, want ErrVerify", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Join error %q does not say %q", err, w)
				}
			}
			if names := dirNames(t, outDir); len(names) != 0 {
				t.Errorf("Join wrote %v despite missing parts", names)
			}
			rc, _, err := Open(context.Background(), filepath.Join(dir, bundleName+".parts"), verifier(pub))
			if rc != nil || !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tt.want[0]) {
				t.Errorf("Open: %v, want an up-front ErrVerify naming %q", err, tt.want[0])
			}
		})
	}
}

func TestSignature(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		verify  func(ssh.PublicKey) func(msg, sig []byte) error
		wantErr string // "" = success
	}{
		{"good signature", nil, verifier, ""},
		{"signed by another key", nil, func(ssh.PublicKey) func(msg, sig []byte) error {
			_, other := newKey(t)
			return verifier(other)
		}, "bad signature"},
		{"list edited after signing", func(t *testing.T, dir string) {
			p := filepath.Join(dir, bundleName+".parts")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"count": 4`), []byte(`"count":  4`), 1), 0o644)
		}, verifier, "bad signature"},
		{"signature removed", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, bundleName+".parts.sig"))
		}, verifier, "missing signature"},
		{"signature garbage", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, bundleName+".parts.sig"), []byte("hello"), 0o644)
		}, verifier, "bad signature"},
		{"nil verify skips the check deliberately", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, bundleName+".parts.sig"), []byte("hello"), 0o644)
		}, func(ssh.PublicKey) func(msg, sig []byte) error { return nil }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, data, pub := splitFixture(t, 3007, 1000)
			if tt.tamper != nil {
				tt.tamper(t, dir)
			}
			outDir := t.TempDir()
			out := filepath.Join(outDir, "out.tar")
			err := Join(ctx, filepath.Join(dir, bundleName+".001"), out, tt.verify(pub))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Join: %v", err)
				}
				if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
					t.Error("joined bytes differ")
				}
				return
			}
			if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), ".parts.sig") {
				t.Fatalf("Join: %v, want ErrVerify about %s naming the .parts.sig", err, tt.wantErr)
			}
			if names := dirNames(t, outDir); len(names) != 0 {
				t.Errorf("Join wrote %v despite a failed signature", names)
			}
			if rc, _, err := Open(ctx, filepath.Join(dir, bundleName+".parts"), tt.verify(pub)); rc != nil || !errors.Is(err, manifest.ErrVerify) {
				t.Errorf("Open: %v, want ErrVerify", err)
			}
		})
	}
}

// countdownCtx reports Canceled once Err has been asked n times, so a test can
// cancel at every point of a copy loop deterministically.
type countdownCtx struct {
	context.Context
	n atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestSplitCancelRemovesOutput(t *testing.T) {
	src := t.TempDir()
	p, _ := writeBundle(t, src, 300<<10)
	signer, _ := newKey(t)
	completed := false
	for n := int64(0); n < 100 && !completed; n++ {
		out := t.TempDir()
		ctx := &countdownCtx{Context: context.Background()}
		ctx.n.Store(n)
		_, err := Split(ctx, p, out, 100<<10, signer)
		names := dirNames(t, out)
		if err == nil {
			completed = true
			if len(names) != 5 {
				t.Errorf("after %d ctx checks: finished with files %v", n, names)
			}
			if n < 3 {
				t.Errorf("Split finished after only %d ctx checks: it does not check ctx while copying", n)
			}
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel after %d checks: %v, want context.Canceled", n, err)
		}
		if len(names) != 0 {
			t.Errorf("cancel after %d checks left %v", n, names)
		}
	}
	if !completed {
		t.Fatal("Split never completed")
	}
	if names := dirNames(t, src); !slices.Equal(names, []string{bundleName}) {
		t.Errorf("bundle folder changed: %v", names)
	}
}

func TestSplitErrorRemovesOutput(t *testing.T) {
	src := t.TempDir()
	p, _ := writeBundle(t, src, 3000)
	out := t.TempDir()
	_, err := Split(context.Background(), p, out, 1000, failSigner{})
	if err == nil || !strings.Contains(err.Error(), "agent refused") {
		t.Fatalf("Split with a failing signer: %v", err)
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Errorf("failed Split left %v", names)
	}
	for _, tc := range []struct {
		name     string
		path     string
		partSize int64
	}{
		{"zero part size", p, 0},
		{"negative part size", p, -1},
		{"missing bundle", filepath.Join(src, "nope.tar"), 1000},
		{"folder as bundle", src, 1000},
	} {
		if _, err := Split(context.Background(), tc.path, out, tc.partSize, nil); err == nil {
			t.Errorf("%s: Split succeeded", tc.name)
		}
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Errorf("rejected Split calls left %v", names)
	}
}

func TestJoinCancelRemovesOutput(t *testing.T) {
	dir, data, pub := splitFixture(t, 300<<10, 100<<10)
	completed := false
	for n := int64(0); n < 100 && !completed; n++ {
		outDir := t.TempDir()
		out := filepath.Join(outDir, bundleName)
		ctx := &countdownCtx{Context: context.Background()}
		ctx.n.Store(n)
		err := Join(ctx, filepath.Join(dir, bundleName+".parts"), out, verifier(pub))
		if err == nil {
			completed = true
			if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
				t.Error("joined bytes differ")
			}
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel after %d checks: %v, want context.Canceled", n, err)
		}
		if names := dirNames(t, outDir); len(names) != 0 {
			t.Errorf("cancel after %d checks left %v", n, names)
		}
	}
	if !completed {
		t.Fatal("Join never completed")
	}
}

func TestOpenCancel(t *testing.T) {
	dir, _, pub := splitFixture(t, 3000, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	rc, _, err := Open(ctx, filepath.Join(dir, bundleName+".parts"), verifier(pub))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := rc.Read(make([]byte, 10)); !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel: %v", err)
	}
}

func TestJoinRefusesToOverwriteItsInput(t *testing.T) {
	dir, _, pub := splitFixture(t, 3000, 1000)
	for _, name := range []string{".001", ".003", ".parts", ".parts.sig"} {
		err := Join(context.Background(), filepath.Join(dir, bundleName+".parts"), filepath.Join(dir, bundleName+name), verifier(pub))
		if err == nil || !strings.Contains(err.Error(), "overwrite") {
			t.Errorf("Join to %s: %v, want refusal", name, err)
		}
	}
	if got := catParts(t, dir); len(got) != 3000 {
		t.Errorf("parts changed: %d bytes", len(got))
	}
}

func TestJoinFirstPartChecks(t *testing.T) {
	dir, _, pub := splitFixture(t, 3000, 1000)
	// The list beside a first part must exist.
	os.Rename(filepath.Join(dir, bundleName+".parts"), filepath.Join(dir, "elsewhere"))
	err := Join(context.Background(), filepath.Join(dir, bundleName+".001"), filepath.Join(t.TempDir(), "o"), verifier(pub))
	if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), bundleName+".parts: missing part list") {
		t.Errorf("Join without list: %v", err)
	}
	err = Join(context.Background(), filepath.Join(dir, bundleName+".002"), filepath.Join(t.TempDir(), "o"), verifier(pub))
	if err == nil || !strings.Contains(err.Error(), "not a split bundle") {
		t.Errorf("Join from the second part: %v", err)
	}
}

func TestIsSplitAndListPath(t *testing.T) {
	tests := []struct {
		path     string
		isSplit  bool
		listPath string
	}{
		{"slurm-2.5.0.tar.parts", true, "slurm-2.5.0.tar.parts"},
		{"/media/usb/slurm-2.5.0.tar.parts", true, "/media/usb/slurm-2.5.0.tar.parts"},
		{"/media/usb/slurm-2.5.0.tar.001", true, "/media/usb/slurm-2.5.0.tar.parts"},
		{"big.tar.0001", true, "big.tar.parts"},
		{"v1.0.001", true, "v1.0.parts"},
		{"slurm-2.5.0.tar.002", false, ""},
		{"slurm-2.5.0.tar", false, ""},
		{"slurm-2.5.0.tar.01", false, ""},
		{"slurm-2.5.0.tar.1001", false, ""},
		{".parts", false, ""},
		{".001", false, ""},
		{"/media/usb/.001", false, ""},
		{"x.parts.sig", false, ""},
	}
	for _, tt := range tests {
		if got := IsSplit(tt.path); got != tt.isSplit {
			t.Errorf("IsSplit(%q) = %v, want %v", tt.path, got, tt.isSplit)
		}
		got, err := ListPath(tt.path)
		if (err == nil) != tt.isSplit || got != tt.listPath {
			t.Errorf("ListPath(%q) = %q, %v; want %q", tt.path, got, err, tt.listPath)
		}
	}
}

func TestPartName(t *testing.T) {
	tests := []struct {
		index, count int
		want         string
	}{
		{1, 1, "b.001"},
		{42, 999, "b.042"},
		{1, 1000, "b.0001"},
		{1000, 1000, "b.1000"},
		{7, 123456, "b.000007"},
	}
	for _, tt := range tests {
		if got := PartName("b", tt.index, tt.count); got != tt.want {
			t.Errorf("PartName(b, %d, %d) = %q, want %q", tt.index, tt.count, got, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"4G", 4 << 30, ""},
		{"4GiB", 4 << 30, ""},
		{"4gb", 4 << 30, ""},
		{"4 GiB", 4 << 30, ""},
		{"700M", 700 << 20, ""},
		{"700MiB", 700 << 20, ""},
		{"512K", 512 << 10, ""},
		{"512k", 512 << 10, ""},
		{"1000000", 1000000, ""},
		{"1000000B", 1000000, ""},
		{"2T", 2 << 40, ""},
		{" 1M ", 1 << 20, ""},
		{"4294967295", MaxFAT32, ""},
		{"8388607T", 8388607 << 40, ""},
		{"8388608T", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"0", 0, "greater than zero"},
		{"0G", 0, "greater than zero"},
		{"-1", 0, "negative"},
		{"-4G", 0, "negative"},
		{"", 0, "empty"},
		{"G", 0, "no number"},
		{"1.5G", 0, "fractions"},
		{"4X", 0, "unknown unit"},
		{"4GiBs", 0, "unknown unit"},
		{"4 G B", 0, "unknown unit"},
		{"0x10", 0, "unknown unit"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "e.g. 4G") {
			t.Errorf("ParseSize(%q) = %d, %v; want an error about %q with an example", tt.in, got, err, tt.wantErr)
		}
	}
}

// validList returns a consistent list of 3 parts for mutation.
func validList() *List {
	h := strings.Repeat("ab", 32)
	return &List{
		Schema: Schema, Bundle: bundleName, Size: 2500, SHA256: h, PartSize: 1000, Count: 3,
		Parts: []Part{
			{Name: bundleName + ".001", Size: 1000, SHA256: h},
			{Name: bundleName + ".002", Size: 1000, SHA256: h},
			{Name: bundleName + ".003", Size: 500, SHA256: h},
		},
	}
}

func TestParseList(t *testing.T) {
	good, err := validList().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseList(good); err != nil {
		t.Fatalf("valid list rejected: %v", err)
	}
	mut := func(f func(l *List)) []byte {
		l := validList()
		f(l)
		b, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"unknown field", bytes.Replace(good, []byte(`"count"`), []byte(`"extra": 1, "count"`), 1), "unknown field"},
		{"trailing data", append(slices.Clone(good), "{}"...), "trailing data"},
		{"not JSON", []byte("slurm-2.5.0.tar.001\n"), "invalid character"},
		{"empty", nil, "EOF"},
		{"wrong schema", mut(func(l *List) { l.Schema = "ccmirror.parts/v2" }), "schema"},
		{"bundle with slash", mut(func(l *List) { l.Bundle = "../etc/x" }), "path separator"},
		{"bundle with backslash", mut(func(l *List) { l.Bundle = `..\x` }), "path separator"},
		{"bundle dotdot", mut(func(l *List) { l.Bundle = ".." }), "not a file name"},
		{"bundle empty", mut(func(l *List) { l.Bundle = "" }), "empty bundle name"},
		{"bundle control char", mut(func(l *List) { l.Bundle = "a\nb" }), "control character"},
		{"part named off-bundle", mut(func(l *List) { l.Parts[1].Name = "../x.002" }), `want "slurm-2.5.0.tar.002"`},
		{"parts out of order", mut(func(l *List) { l.Parts[0].Name, l.Parts[1].Name = l.Parts[1].Name, l.Parts[0].Name }), "part 1 is named"},
		{"two-digit names", mut(func(l *List) { l.Parts[0].Name = bundleName + ".01" }), "part 1 is named"},
		{"count too high", mut(func(l *List) { l.Count = 4 }), "count 4 but 3 parts"},
		{"count zero", mut(func(l *List) { l.Count = 0; l.Parts = nil }), "at least 1"},
		{"sizes do not add up", mut(func(l *List) { l.Size = 2600 }), "parts add up to 2500"},
		{"short middle part", mut(func(l *List) { l.Parts[1].Size = 900; l.Parts[2].Size = 600 }), "want part_size"},
		{"last part too big", mut(func(l *List) { l.Size = 3100; l.Parts[2].Size = 1100 }), "count 3, want 4"},
		{"negative part", mut(func(l *List) { l.Size = 2999; l.Parts[2].Size = -1 }), "negative size"},
		{"zero part size", mut(func(l *List) { l.PartSize = 0 }), "part_size 0"},
		{"upper-case hash", mut(func(l *List) { l.Parts[2].SHA256 = strings.Repeat("AB", 32) }), bundleName + ".003: sha256"},
		{"short whole hash", mut(func(l *List) { l.SHA256 = "abcd" }), "sha256"},
		{"overflow", mut(func(l *List) {
			l.PartSize = 1 << 62
			l.Size = math.MaxInt64
			l.Count = 2
			l.Parts = l.Parts[:2]
			l.Parts[0].Size, l.Parts[1].Size = 1<<62, 1<<62
		}), "overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseList(tt.in)
			if l != nil || !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseList = %v, %v; want ErrVerify containing %q", l, err, tt.wantErr)
			}
		})
	}
}

func TestParseListManyParts(t *testing.T) {
	h := strings.Repeat("0", 64)
	l := &List{Schema: Schema, Bundle: "b", Size: 1000, SHA256: h, PartSize: 1, Count: 1000}
	for i := 1; i <= 1000; i++ {
		l.Parts = append(l.Parts, Part{Name: PartName("b", i, 1000), Size: 1, SHA256: h})
	}
	b, _ := l.Marshal()
	if _, err := ParseList(b); err != nil {
		t.Fatalf("1000-part list: %v", err)
	}
	if l.Parts[0].Name != "b.0001" {
		t.Errorf("first of 1000 parts is %q, want b.0001", l.Parts[0].Name)
	}
	l.Parts[0].Name = "b.001"
	b, _ = l.Marshal()
	if _, err := ParseList(b); err == nil {
		t.Error("3-digit name accepted in a 1000-part list")
	}
}

func FuzzParseList(f *testing.F) {
	good, _ := validList().Marshal()
	f.Add(good)
	one := &List{Schema: Schema, Bundle: "x", Size: 0, SHA256: strings.Repeat("e", 64), PartSize: 5, Count: 1,
		Parts: []Part{{Name: "x.001", Size: 0, SHA256: strings.Repeat("e", 64)}}}
	b, _ := one.Marshal()
	f.Add(b)
	f.Add([]byte(`{"schema":"ccmirror.parts/v1","bundle":"../a","size":1,"count":1,"parts":[]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := ParseList(in)
		if err != nil {
			if !errors.Is(err, manifest.ErrVerify) {
				t.Fatalf("error does not wrap ErrVerify: %v", err)
			}
			return
		}
		if strings.ContainsAny(l.Bundle, `/\`) {
			t.Fatalf("accepted bundle name %q", l.Bundle)
		}
		var sum int64
		for _, p := range l.Parts {
			if filepath.Base(p.Name) != p.Name || !strings.HasPrefix(p.Name, l.Bundle+".") {
				t.Fatalf("accepted part name %q", p.Name)
			}
			sum += p.Size
		}
		if sum != l.Size || len(l.Parts) != l.Count {
			t.Fatalf("accepted inconsistent list %+v", l)
		}
		again, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseList(again); err != nil {
			t.Fatalf("re-encoded list rejected: %v", err)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4G", "4GiB", "700M", "512K", "1000000", "0", "-1", "1.5G", "8388608T", " 2 tib "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n <= 0 {
			t.Fatalf("ParseSize(%q) = %d without error", s, n)
		}
		if err != nil && n != 0 {
			t.Fatalf("ParseSize(%q) = %d with error %v", s, n, err)
		}
	})
}
