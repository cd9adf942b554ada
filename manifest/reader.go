package manifest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ccmirror/ccmirror/internal/asynchash"
)

// maxTrailer bounds the zero padding accepted after the end of the tar
// archive (GNU tar pads to 10 KiB records; some media to larger blocks).
const maxTrailer = 1 << 20

// Reader reads a bundle as a stream, verifying while it goes. NewReader
// reads and cross-checks the head (SHA256SUMS, SHA256SUMS.sig, manifest.json);
// Next then yields each payload file in bundle order. It never holds a
// payload in memory. A Reader does not check the signature: pass Sums and
// Signature to manifest/trust for that.
type Reader struct {
	src    *sourceReader
	tr     *tar.Reader
	sums   []byte
	sig    []byte
	mb     []byte
	m      *Manifest
	files  []File
	listed map[string]bool
	seen   map[string]bool
	next   int            // index in files of the next expected payload
	cur    *payloadReader // payload handed out by the last Next
	buf    []byte
	err    error // sticky: returned by every later Next
	// elsewhere: payloads of at least asyncMin bytes are hashed on a
	// goroutine of their own (HashElsewhere).
	elsewhere bool
}

// asyncMin is the smallest payload HashElsewhere hashes on another
// goroutine: below it, starting one costs more than it saves.
const asyncMin = 256 << 10

// HashElsewhere makes every later payload of at least 256 KiB hash on a
// goroutine of its own, so the reading goroutine only copies: on two
// cores, one reads and writes while the other hashes. What Read returns
// is unchanged (the Read reaching the end waits for the hash). Call Close
// when abandoning a Reader before its end.
func (r *Reader) HashElsewhere() { r.elsewhere = true }

// Close stops the hashing of a payload abandoned part-way (HashElsewhere);
// the Reader must not be used after. It is safe to call more than once.
func (r *Reader) Close() {
	if r.cur != nil {
		r.cur.stop()
		r.cur = nil
	}
	if r.err == nil {
		r.err = errors.New("manifest reader closed")
	}
}

// Payload is one payload file of a bundle. Reading it hashes the bytes. When
// the SHA-256 differs from File.SHA256, the Read that reaches the end
// returns 0 bytes and an error wrapping ErrVerify (so io.ReadFull of exactly
// Size bytes fails too); otherwise later Reads return io.EOF.
type Payload struct {
	File File
	Mode int64 // permission bits from the tar header
	io.Reader
}

// sourceReader remembers an I/O error of the underlying reader, so a
// failing disk or network is not reported as a bad bundle.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// NewReader reads the head of a bundle: SHA256SUMS (first), the optional
// SHA256SUMS.sig (second), manifest.json. It checks manifest.json's hash
// against SHA256SUMS and that SHA256SUMS lists exactly manifest.json and the
// manifest's payload files with the same hashes. Only the head is read, so
// it also serves to inspect a bundle. Errors about the content wrap
// ErrVerify; errors of r itself are returned as they are. NewReader checks
// no signature: to trust a bundle, use NewCheckedReader.
func NewReader(r io.Reader) (*Reader, error) { return NewCheckedReader(r, nil) }

// NewCheckedReader is NewReader with the signature checked first: once the
// three head entries are read (each bounded by its size limit), check gets
// the raw bytes of SHA256SUMS and SHA256SUMS.sig (nil when unsigned), and
// only if it returns nil are SHA256SUMS and manifest.json parsed and
// cross-checked. So nothing manifest-wide runs on bytes nobody vouched for.
// check's error is returned as it is.
func NewCheckedReader(r io.Reader, check func(sums, sig []byte) error) (*Reader, error) {
	src := &sourceReader{r: r}
	br := &Reader{src: src, tr: tar.NewReader(src)}

	hdr, err := br.header("the head")
	if err == io.EOF {
		return nil, fmt.Errorf("bundle is empty, want %s first: %w", SumsName, ErrVerify)
	}
	if err != nil {
		return nil, err
	}
	if hdr.Name != SumsName {
		return nil, fmt.Errorf("bundle entry %q comes first, want %s: %w", hdr.Name, SumsName, ErrVerify)
	}
	if br.sums, err = br.readSmall(hdr, MaxSumsSize); err != nil {
		return nil, err
	}

	if hdr, err = br.header(SumsName); err != nil {
		return nil, br.headEOF(err)
	}
	if hdr.Name == SignatureName {
		if br.sig, err = br.readSmall(hdr, MaxSignatureSize); err != nil {
			return nil, err
		}
		if len(br.sig) == 0 {
			return nil, fmt.Errorf("bundle entry %q is empty: %w", SignatureName, ErrVerify)
		}
		if hdr, err = br.header(SignatureName); err != nil {
			return nil, br.headEOF(err)
		}
	}
	if hdr.Name != ManifestName {
		return nil, fmt.Errorf("bundle entry %q where %s belongs (head order: %s, optional %s, %s): %w",
			hdr.Name, ManifestName, SumsName, SignatureName, ManifestName, ErrVerify)
	}
	if br.mb, err = br.readSmall(hdr, MaxManifestSize); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(br.sums, br.sig); err != nil {
			return nil, err
		}
	}
	list, err := ParseSums(br.sums)
	if err != nil {
		return nil, err
	}
	if br.m, err = Parse(br.mb); err != nil {
		return nil, err
	}

	want := make(map[string]string, len(list))
	for _, s := range list {
		want[s.Path] = s.SHA256
	}
	if sum, ok := want[ManifestName]; !ok {
		return nil, fmt.Errorf("%s does not list %s: %w", SumsName, ManifestName, ErrVerify)
	} else if got := sha256Hex(br.mb); got != sum {
		return nil, fmt.Errorf("%s: sha256 %s, want %s: %w", ManifestName, got, sum, ErrVerify)
	}
	br.files = br.m.Files()
	br.listed = make(map[string]bool, len(br.files))
	for _, f := range br.files {
		sum, ok := want[f.Path]
		if !ok {
			return nil, fmt.Errorf("%s declares %s, which %s does not list: %w", ManifestName, f.Path, SumsName, ErrVerify)
		}
		if sum != f.SHA256 {
			return nil, fmt.Errorf("%s: sha256 %s in %s, %s in %s: %w", f.Path, sum, SumsName, f.SHA256, ManifestName, ErrVerify)
		}
		br.listed[f.Path] = true
	}
	for _, s := range list {
		if s.Path != ManifestName && !br.listed[s.Path] {
			return nil, fmt.Errorf("%s lists %s, which %s does not declare: %w", SumsName, s.Path, ManifestName, ErrVerify)
		}
	}
	br.seen = make(map[string]bool, len(br.files))
	return br, nil
}

// Sums returns the raw bytes of SHA256SUMS, the message the signature covers.
func (r *Reader) Sums() []byte { return r.sums }

// Signature returns the raw armored SHA256SUMS.sig, or nil for an unsigned
// bundle.
func (r *Reader) Signature() []byte { return r.sig }

// Manifest returns the parsed and validated manifest.json.
func (r *Reader) Manifest() *Manifest { return r.m }

// ManifestBytes returns manifest.json exactly as stored in the bundle.
func (r *Reader) ManifestBytes() []byte { return r.mb }

// Next returns the next payload file, in bundle order. If the previous
// payload was not read to its end, Next reads and verifies the rest first.
// It rejects, with errors wrapping ErrVerify that name the entry: links,
// directories, devices and other non-regular entries, absolute or ".."
// paths, duplicates, entries SHA256SUMS does not list, entries out of order,
// a size that differs from the manifest, an archive that ends before every
// listed file, and non-zero data after the end of the archive. It returns
// io.EOF once every listed file was read and verified. After an error, Next
// keeps returning that error.
func (r *Reader) Next() (*Payload, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.cur != nil {
		err := r.cur.drain()
		r.cur = nil
		if err != nil {
			r.err = err
			return nil, err
		}
	}
	p, err := r.nextPayload()
	if err != nil {
		r.err = err
	}
	return p, err
}

func (r *Reader) nextPayload() (*Payload, error) {
	after := ManifestName
	if r.next > 0 {
		after = r.files[r.next-1].Path
	}
	hdr, err := r.header(after)
	if err == io.EOF {
		if r.next < len(r.files) {
			return nil, fmt.Errorf("bundle ends before %s (%d listed files missing): %w",
				r.files[r.next].Path, len(r.files)-r.next, ErrVerify)
		}
		if err := r.checkTrailer(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	name := hdr.Name
	switch {
	case name == SumsName || name == SignatureName || name == ManifestName:
		return nil, fmt.Errorf("bundle entry %q is out of place: it belongs to the head, before every payload file: %w", name, ErrVerify)
	case r.seen[name]:
		return nil, fmt.Errorf("bundle entry %q is a duplicate: %w", name, ErrVerify)
	case !r.listed[name]:
		return nil, fmt.Errorf("bundle entry %q is not listed in %s: %w", name, SumsName, ErrVerify)
	case name != r.files[r.next].Path:
		return nil, fmt.Errorf("bundle entry %q is out of order: want %s next: %w", name, r.files[r.next].Path, ErrVerify)
	}
	f := r.files[r.next]
	r.next++
	r.seen[name] = true
	if hdr.Size != f.Size {
		return nil, fmt.Errorf("bundle entry %q is %d bytes, manifest says %d: %w", name, hdr.Size, f.Size, ErrVerify)
	}
	var h summer = sha256.New()
	if r.elsewhere && f.Size >= asyncMin {
		h = asynchash.New()
	}
	r.cur = &payloadReader{r: r, f: f, h: h}
	return &Payload{File: f, Mode: hdr.Mode & 0o777, Reader: r.cur}, nil
}

// header reads the next tar header and checks it is a safe regular file.
// after names the previous entry for error messages. It returns io.EOF at
// the end of the archive.
func (r *Reader) header(after string) (*tar.Header, error) {
	hdr, err := r.tr.Next()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil && (hdr == nil || !errors.Is(err, tar.ErrInsecurePath)) {
		return nil, r.fail("tar header after "+after, err)
	}
	if err := checkHeader(hdr); err != nil {
		return nil, err
	}
	return hdr, nil
}

// headEOF turns the end of the archive inside the head into an error.
func (r *Reader) headEOF(err error) error {
	if err == io.EOF {
		return fmt.Errorf("bundle ends before %s: %w", ManifestName, ErrVerify)
	}
	return err
}

// readSmall reads a whole head entry of at most max bytes.
func (r *Reader) readSmall(hdr *tar.Header, max int64) ([]byte, error) {
	if hdr.Size > max {
		return nil, fmt.Errorf("bundle entry %q is %d bytes, limit %d: %w", hdr.Name, hdr.Size, max, ErrVerify)
	}
	// Grow with the data actually read: a truncated entry claiming the
	// maximum size costs what it holds, not the limit.
	buf := bytes.NewBuffer(make([]byte, 0, min(hdr.Size, 64<<10)))
	if _, err := io.CopyN(buf, r.tr, hdr.Size); err != nil {
		return nil, r.fail(fmt.Sprintf("bundle entry %q", hdr.Name), err)
	}
	return buf.Bytes(), nil
}

// fail classifies an error met while reading the tar stream: an I/O error
// of the source passes through; anything else (truncation, a corrupt
// header) means a bad bundle.
func (r *Reader) fail(what string, err error) error {
	if r.src.err != nil {
		return fmt.Errorf("read bundle: %s: %w", what, r.src.err)
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: bundle is truncated: %w", what, ErrVerify)
	}
	return fmt.Errorf("%s: %w: %v", what, ErrVerify, err)
}

// checkTrailer accepts only zero bytes (at most maxTrailer) after the end
// of the tar archive.
func (r *Reader) checkTrailer() error {
	buf := r.buffer()
	var total int64
	for {
		n, err := r.src.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				return fmt.Errorf("non-zero data after the end of the tar archive: %w", ErrVerify)
			}
		}
		total += int64(n)
		if total > maxTrailer {
			return fmt.Errorf("more than %d bytes after the end of the tar archive: %w", maxTrailer, ErrVerify)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read bundle: after the end of the tar archive: %w", err)
		}
	}
}

func (r *Reader) buffer() []byte {
	if r.buf == nil {
		r.buf = make([]byte, copyBufSize)
	}
	return r.buf
}

// checkHeader rejects anything but a regular file at a safe path.
func checkHeader(hdr *tar.Header) error {
	var what string
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00': // '\x00' is the pre-POSIX regular file flag
	case tar.TypeSymlink:
		what = fmt.Sprintf("symbolic link to %q", hdr.Linkname)
	case tar.TypeLink:
		what = fmt.Sprintf("hard link to %q", hdr.Linkname)
	case tar.TypeDir:
		what = "directory"
	case tar.TypeChar, tar.TypeBlock:
		what = "device"
	case tar.TypeFifo:
		what = "FIFO"
	case tar.TypeXGlobalHeader:
		what = "pax global header"
	default:
		what = fmt.Sprintf("entry of type %q", hdr.Typeflag)
	}
	if what != "" {
		return fmt.Errorf("bundle entry %q: %s; only regular files are allowed: %w", hdr.Name, what, ErrVerify)
	}
	if reason := pathProblem(hdr.Name); reason != "" {
		return fmt.Errorf("bundle entry %q: unsafe path: %s: %w", clip(hdr.Name), reason, ErrVerify)
	}
	if hdr.Mode&^0o100777 != 0 || hdr.Mode < 0 {
		return fmt.Errorf("bundle entry %q: mode %#o has more than permission bits: %w", hdr.Name, hdr.Mode, ErrVerify)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("bundle entry %q: sparse file: %w", hdr.Name, ErrVerify)
		}
	}
	return nil
}

// payloadReader hashes a payload as it is read and verifies it when the
// last byte was delivered.
// summer is what a payload is hashed with: a sha256 hash.Hash or an
// asynchash.Hasher.
type summer interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
}

type payloadReader struct {
	r   *Reader
	f   File
	h   summer
	n   int64
	err error // sticky; io.EOF once verified
	// summed: h.Sum was called (an asynchash.Hasher's goroutine is done).
	summed bool
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.n == p.f.Size {
		p.err = p.verify()
		return 0, p.err
	}
	if len(b) == 0 {
		return 0, nil
	}
	if rest := p.f.Size - p.n; int64(len(b)) > rest {
		b = b[:rest]
	}
	n, err := p.r.tr.Read(b)
	p.h.Write(b[:n])
	p.n += int64(n)
	if p.n == p.f.Size {
		if verr := p.verify(); verr != io.EOF {
			// Withhold the last chunk: a caller reading exactly Size
			// bytes (io.ReadFull) then sees the error, not a short
			// success.
			p.err = verr
			return 0, verr
		}
		p.err = io.EOF
		return n, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		p.err = p.r.fail(fmt.Sprintf("bundle entry %q", p.f.Path), err)
		p.stop()
		return n, p.err
	}
	return n, nil
}

// stop ends an asynchronous hash that will not be summed.
func (p *payloadReader) stop() {
	if a, ok := p.h.(*asynchash.Hasher); ok && !p.summed {
		p.summed = true
		a.Stop()
	}
}

// verify returns io.EOF when the hash matches, else the ErrVerify error.
func (p *payloadReader) verify() error {
	p.summed = true
	if got := hex.EncodeToString(p.h.Sum(nil)); got != p.f.SHA256 {
		return fmt.Errorf("bundle entry %q: sha256 %s, want %s: %w", p.f.Path, got, p.f.SHA256, ErrVerify)
	}
	return io.EOF
}

// drain reads and verifies whatever the caller left unread.
func (p *payloadReader) drain() error {
	buf := p.r.buffer()
	for {
		_, err := p.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
