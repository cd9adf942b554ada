package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/atomicfile"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/ccmirror/ccmirror/manifest"
)

// PartialSuffix is appended to the destination while a Pull is incomplete;
// PartialSuffix+ETagSuffix names the sidecar holding the blob's ETag.
const (
	PartialSuffix = ".partial"
	ETagSuffix    = ".etag"
)

// PullResult describes a finished Pull.
type PullResult struct {
	// Path is the local file written.
	Path string
	// URL is the blob's URL, SAS redacted.
	URL string
	// Size, SHA256 and ETag describe the blob downloaded. SHA256 is ""
	// when the blob was identified by HeadSHA256 instead (Options.Check).
	Size   int64
	SHA256 string
	ETag   string
	// HeadSHA256 is the sha256 of the bundle's SHA256SUMS, as the check
	// found it and the blob's ccmirror_head_sha256 recorded it; "" when
	// the download was checked by the whole file's sha256.
	HeadSHA256 string
	// ResumedFrom is the offset a previous partial download was resumed
	// from (0 when the download started afresh).
	ResumedFrom int64
	// Downloaded is the number of content bytes received in this call.
	Downloaded int64
	// Checked is true when the blob carried a sha256 (ccmirror_head_sha256
	// with a Check, else ccmirror_sha256) or a Content-MD5 and the file
	// matched it.
	Checked bool
}

// Pull downloads the blob named by url to localFile. A url naming a
// container or a prefix ending in "/" means localFile's base name under it.
//
// Bytes go to localFile+".partial" first, with the blob's ETag in
// localFile+".partial.etag". When a partial file exists from an interrupted
// pull and the blob's ETag is unchanged, the download resumes from the
// partial file's size; a changed blob restarts from zero. The rest comes as
// ranges (sized as Options.BlockSize says), Options.Concurrency of them at once, each
// written at its offset, every request conditional on that ETag, broken
// streams resumed by the SDK's retry reader; the file is hashed from its
// start, in order, as its bytes become contiguous; writes run at most a
// window (a quarter of the ranges in flight, at least two) past what the hasher has consumed, so
// little is left to hash when the last byte arrives, and each finished
// range is handed to the kernel's writeback at once, so the final fsync
// finds little to write. A failed download keeps
// the contiguous bytes for the next Pull. The result must have the blob's
// size and, when the blob carries it, its ccmirror_sha256 metadata, or else
// (only then) its Content-MD5 (else the partial is removed and the error
// matches manifest.ErrVerify). With Options.Check on a blob that records
// ccmirror_head_sha256, the SHA256SUMS the check proved the bundle against
// must match that instead, and the whole file is not hashed. Only then is
// the file renamed to localFile: nothing
// half-written ever appears under the final name.
func Pull(ctx context.Context, url, localFile string, opts Options) (*PullResult, error) {
	loc, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	log := opts.log()
	name := loc.BlobName(localFile)
	res := &PullResult{Path: localFile, URL: loc.display(name)}
	op := fmt.Sprintf("pull %s", res.URL)

	cc, cred, err := newContainerClient(loc, opts)
	if err != nil {
		return nil, err
	}
	bc := cc.NewBlobClient(name)
	props, err := bc.GetProperties(ctx, nil)
	if err != nil {
		return nil, classify(op, cred, err)
	}
	if props.ContentLength == nil || props.ETag == nil {
		return nil, &remoteError{msg: op + ": the service did not report the blob's size and ETag"}
	}
	size, etag := *props.ContentLength, *props.ETag
	wantSHA := strings.ToLower(metaValue(props.Metadata, MetaSHA256))
	wantHead := strings.ToLower(metaValue(props.Metadata, MetaHeadSHA256))
	wantMD5 := props.ContentMD5
	// A check that proves a bundle against its SHA256SUMS, on a blob that
	// records that head's hash, needs no hash of the whole file.
	byHead := opts.Check != nil && wantHead != ""
	res.Size, res.ETag = size, string(etag)

	if dir := filepath.Dir(localFile); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	partial := localFile + PartialSuffix
	sidecar := partial + ETagSuffix

	offset := resumeOffset(partial, sidecar, string(etag), size)
	if offset > 0 {
		log.Info("resuming download", "url", res.URL, "from", offset, "size", size)
	} else if err := os.WriteFile(sidecar, []byte(string(etag)+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer f.Close()

	if err := f.Truncate(offset); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	res.ResumedFrom = offset

	// Ranges download in parallel into their places in the file while the
	// file is hashed from its start as its bytes become contiguous (the
	// resumed part first). MD5 only when the blob has no sha256.
	d := newFetch(bc, etag, f, offset, size, !byHead && wantSHA == "" && len(wantMD5) > 0, opts)
	d.wantSum = !byHead
	err = d.run(ctx)
	res.Downloaded = d.downloaded.Load()
	var ce *CheckError
	if errors.As(err, &ce) && ctx.Err() == nil {
		// The check refused the bytes: nothing of them is kept.
		f.Close()
		os.Remove(partial)
		os.Remove(sidecar)
		log.Info("download stopped: the check failed", "url", res.URL, "err", ce.Err)
		return nil, &CheckError{URL: res.URL, Err: ce.Err}
	}
	if err != nil {
		// What is written contiguously and its ETag stay: the next Pull
		// resumes from there.
		have := d.contiguous()
		if terr := f.Truncate(have); terr != nil {
			log.Warn("could not cut the partial file back to its contiguous bytes", "path", partial, "err", terr)
			os.Remove(sidecar) // restart, not resume, over holes
		}
		_ = f.Sync()
		log.Info("download interrupted", "url", res.URL, "have", have, "size", size, "err", err)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if _, ok := err.(*os.PathError); ok {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if re, ok := err.(*remoteError); ok {
			return nil, &remoteError{msg: fmt.Sprintf("%s: %s; run again to resume", op, re.msg), cause: re.cause}
		}
		if errors.Is(err, manifest.ErrVerify) {
			os.Remove(partial)
			os.Remove(sidecar)
		}
		return nil, classify(op, cred, err)
	}
	mh := d.mh
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	discard := func() {
		os.Remove(partial)
		os.Remove(sidecar)
	}
	if st.Size() != size {
		if st.Size() < size {
			return nil, &remoteError{msg: fmt.Sprintf("%s: stream ended at %d of %d bytes; run again to resume", op, st.Size(), size)}
		}
		discard()
		return nil, fmt.Errorf("%s: got %d bytes, blob has %d: %w", op, st.Size(), size, manifest.ErrVerify)
	}
	if byHead && d.checked.HeadSHA256 != "" {
		// The check proved every payload against this SHA256SUMS.
		res.HeadSHA256, res.SHA256 = d.checked.HeadSHA256, d.checked.SHA256
		if res.HeadSHA256 != wantHead {
			discard()
			return nil, fmt.Errorf("%s: SHA256SUMS sha256 %s, blob metadata says %s: %w", op, res.HeadSHA256, wantHead, manifest.ErrVerify)
		}
		res.Checked = true
	} else if res.SHA256, err = d.sum(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if wantSHA != "" && res.SHA256 != "" {
		if res.SHA256 != wantSHA {
			discard()
			return nil, fmt.Errorf("%s: sha256 %s, blob metadata says %s: %w", op, res.SHA256, wantSHA, manifest.ErrVerify)
		}
		res.Checked = true
	}
	if mh != nil {
		if got := mh.Sum(nil); !bytes.Equal(got, wantMD5) {
			discard()
			return nil, fmt.Errorf("%s: Content-MD5 %x, blob says %x: %w", op, got, wantMD5, manifest.ErrVerify)
		}
		res.Checked = true
	}
	if err := os.Rename(partial, localFile); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	os.Remove(sidecar)
	_ = atomicfile.SyncDir(filepath.Dir(localFile)) // best effort: the data itself is synced
	log.Info("downloaded", "url", res.URL, "path", localFile, "size", size, "resumed_from", offset, "sha256", res.SHA256)
	return res, nil
}

// resumeOffset returns how many bytes of partial can be kept: its size when
// the sidecar holds etag and it is not longer than the blob, else 0.
func resumeOffset(partial, sidecar, etag string, size int64) int64 {
	st, err := os.Stat(partial)
	if err != nil || !st.Mode().IsRegular() || st.Size() > size {
		return 0
	}
	prev, err := os.ReadFile(sidecar)
	if err != nil || strings.TrimSpace(string(prev)) != etag {
		return 0
	}
	return st.Size()
}

// retryBody wraps a download in the SDK's retry reader, which re-requests
// the rest of the range (conditional on the ETag) when the stream breaks.
// Negative Options.MaxRetries means no retry at all.
func retryBody(ctx context.Context, resp *blob.DownloadStreamResponse, o Options) io.ReadCloser {
	if o.MaxRetries < 0 {
		return resp.Body
	}
	return resp.NewRetryReader(ctx, &blob.RetryReaderOptions{
		MaxRetries: o.readRetries(),
		OnFailedRead: func(n int32, err error, r blob.HTTPRange, retry bool) {
			o.log().Warn("download stream broke", "attempt", n, "offset", r.Offset, "retry", retry, "err", oneLine(err.Error()))
		},
	})
}

// Open returns a stream of the blob named by url and its size, for
// `install` straight from a blob URL. Broken streams are resumed by the SDK's
// retry reader, conditional on the blob's ETag. At the end of the stream the
// reader checks the size and, when present, the ccmirror_sha256 metadata: a
// short stream fails with an ErrUpstream error, a hash mismatch with
// manifest.ErrVerify.
func Open(ctx context.Context, url string, opts ...Options) (io.ReadCloser, int64, error) {
	o := optionsOf(opts)
	loc, err := ParseURL(url)
	if err != nil {
		return nil, 0, err
	}
	if loc.IsPrefix() {
		return nil, 0, fmt.Errorf("open %s: the URL names a container or prefix, not a blob: %w", loc, ErrBadURL)
	}
	op := "open " + loc.display(loc.Path)
	cc, cred, err := newContainerClient(loc, o)
	if err != nil {
		return nil, 0, err
	}
	resp, err := cc.NewBlobClient(loc.Path).DownloadStream(ctx, nil)
	if err != nil {
		return nil, 0, classify(op, cred, err)
	}
	if resp.ContentLength == nil {
		resp.Body.Close()
		return nil, 0, &remoteError{msg: op + ": the service did not report the blob's size"}
	}
	size := *resp.ContentLength
	body := retryBody(ctx, &resp, o)
	o.log().Info("streaming blob", "url", loc.display(loc.Path), "size", size)
	return &checkedReader{
		op: op, cred: cred, r: body, size: size,
		want: strings.ToLower(metaValue(resp.Metadata, MetaSHA256)),
		h:    sha256.New(),
	}, size, nil
}

// checkedReader counts and hashes a blob stream and checks both at EOF.
type checkedReader struct {
	op   string
	cred credKind
	r    io.ReadCloser
	size int64
	n    int64
	want string
	h    hash.Hash
	err  error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	if c.n > c.size {
		c.err = fmt.Errorf("%s: more than %d bytes: %w", c.op, c.size, manifest.ErrVerify)
		return n, c.err
	}
	switch {
	case err == io.EOF:
		if c.n < c.size {
			c.err = &remoteError{msg: fmt.Sprintf("%s: stream ended at %d of %d bytes", c.op, c.n, c.size), cause: io.ErrUnexpectedEOF}
			return n, c.err
		}
		if c.want != "" {
			if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
				c.err = fmt.Errorf("%s: sha256 %s, blob metadata says %s: %w", c.op, got, c.want, manifest.ErrVerify)
				return n, c.err
			}
		}
		c.err = io.EOF
	case err != nil:
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			c.err = fmt.Errorf("%s: %w", c.op, err)
		} else {
			c.err = classify(c.op, c.cred, err)
		}
	}
	return n, c.err
}

func (c *checkedReader) Close() error { return c.r.Close() }

// BlobInfo describes one blob found by List.
type BlobInfo struct {
	// Name is the full blob name inside the container.
	Name string
	// URL is the blob's URL without SAS.
	URL          string
	Size         int64
	ETag         string
	LastModified time.Time
	// SHA256 is the ccmirror_sha256 metadata, "" when absent.
	SHA256 string
}

// List returns the blobs of a container whose names start with the URL's
// own prefix followed by prefix, in name order.
func List(ctx context.Context, containerURL, prefix string, opts ...Options) ([]BlobInfo, error) {
	o := optionsOf(opts)
	loc, err := ParseURL(containerURL)
	if err != nil {
		return nil, err
	}
	full := loc.Path + prefix
	op := "list " + loc.display(full)
	cc, cred, err := newContainerClient(loc, o)
	if err != nil {
		return nil, err
	}
	lo := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if full != "" {
		lo.Prefix = &full
	}
	pager := cc.NewListBlobsFlatPager(lo)
	var out []BlobInfo
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, classify(op, cred, err)
		}
		for _, it := range page.Segment.BlobItems {
			if it == nil || it.Name == nil {
				continue
			}
			bi := BlobInfo{Name: *it.Name, URL: loc.BlobURL(*it.Name), SHA256: metaValue(it.Metadata, MetaSHA256)}
			if p := it.Properties; p != nil {
				if p.ContentLength != nil {
					bi.Size = *p.ContentLength
				}
				bi.ETag = etagString(p.ETag)
				if p.LastModified != nil {
					bi.LastModified = *p.LastModified
				}
			}
			out = append(out, bi)
		}
	}
	return out, nil
}

func etagString(e *azcore.ETag) string {
	if e == nil {
		return ""
	}
	return string(*e)
}
