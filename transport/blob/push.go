package blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"mime"
	"os"
	"path"
	"strings"

	"github.com/ccmirror/ccmirror/internal/ctxio"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/ccmirror/ccmirror/manifest"
)

// PushResult describes a finished Push.
type PushResult struct {
	// URL is the blob's URL, SAS redacted.
	URL string
	// Blob is the blob name inside the container.
	Blob string
	// Size and SHA256 describe the content (checked on the service after upload).
	Size   int64
	SHA256 string
	// ETag is the blob's ETag after the upload.
	ETag string
	// Skipped is true when the blob already held exactly this content
	// (same size and ccmirror_sha256), so nothing was uploaded.
	Skipped bool
	// CreatedContainer is true when Push had to create the container.
	CreatedContainer bool
}

// Push uploads localFile to the blob named by url (a container or a prefix
// ending in "/" means the file's base name under it), creating the container
// when missing.
//
// The file is uploaded as a block blob in blocks of Options.BlockSize, with
// Options.Concurrency blocks in flight, each carrying a transactional CRC64
// the service checks. Staged blocks stay invisible until CommitBlockList
// commits them atomically (a small file goes in one atomic Put Blob), so an
// interrupted push never leaves a half-written blob under the final name: the
// previous content, or nothing, stays visible. The blob gets the whole file's
// Content-MD5 and its sha256 in metadata "ccmirror_sha256" and, for a
// bundle, the sha256 of its SHA256SUMS in "ccmirror_head_sha256";
// afterwards GetProperties must report the same size and hashes, else the error matches
// manifest.ErrVerify (so a SAS needs read as well as create and write).
// When the blob already holds the same size and sha256, nothing is
// uploaded (a missing ccmirror_head_sha256 is added to its metadata).
func Push(ctx context.Context, localFile, url string, opts Options) (*PushResult, error) {
	loc, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	log := opts.log()
	f, err := os.Open(localFile)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("push %s: not a regular file", localFile)
	}
	size := st.Size()
	sums, err := hashReader(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("push %s: read: %w", localFile, err)
	}
	if sums.n != size {
		return nil, fmt.Errorf("push %s: file changed while being read (%d bytes, stat said %d)", localFile, sums.n, size)
	}
	head := headSHA256(f, size)
	name := loc.BlobName(localFile)
	res := &PushResult{URL: loc.display(name), Blob: name, Size: size, SHA256: sums.sha256}
	op := fmt.Sprintf("push %s to %s", localFile, res.URL)

	cc, cred, err := newContainerClient(loc, opts)
	if err != nil {
		return nil, err
	}
	bb := cc.NewBlockBlobClient(name)

	// Already there? The mirror job pushes the same bundle again and again.
	// A missing container shows here too, before any block is sent.
	props, err := bb.GetProperties(ctx, nil)
	switch {
	case err == nil:
		if props.ContentLength != nil && *props.ContentLength == size && metaValue(props.Metadata, MetaSHA256) == sums.sha256 {
			res.Skipped = true
			res.ETag = etagString(props.ETag)
			if head != "" && metaValue(props.Metadata, MetaHeadSHA256) != head {
				// Pushed before the head's hash was recorded: add it, so a
				// pull hashes each byte once.
				// The service hands keys back capitalized: send them as set.
				md := map[string]*string{MetaHeadSHA256: ptr(head)}
				for k, v := range props.Metadata {
					if k = strings.ToLower(k); k != MetaHeadSHA256 {
						md[k] = v
					}
				}
				set, err := bb.SetMetadata(ctx, md, &blob.SetMetadataOptions{
					AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: props.ETag}},
				})
				if err != nil {
					return nil, classify(op+": record the bundle head's sha256", cred, err)
				}
				res.ETag = etagString(set.ETag)
			}
			log.Info("blob already up to date", "url", res.URL, "size", size, "sha256", sums.sha256)
			return res, nil
		}
	case ctx.Err() != nil:
		return nil, classify(op, cred, err)
	case isCode(err, "ContainerNotFound"):
		if res.CreatedContainer, err = ensureContainer(ctx, cc, cred, op); err != nil {
			return nil, err
		}
	}
	// Other errors (a SAS without read permission) surface on upload.

	headers := &blob.HTTPHeaders{BlobContentMD5: sums.md5, BlobContentType: ptr(contentType(name))}
	metadata := map[string]*string{MetaSHA256: ptr(sums.sha256)}
	if head != "" {
		metadata[MetaHeadSHA256] = ptr(head)
	}
	blockSize := opts.blockSize()
	if n := (size + blockSize - 1) / blockSize; n > blockblob.MaxBlocks {
		// A block blob holds at most 50,000 blocks: grow the blocks to fit.
		blockSize = (size + blockblob.MaxBlocks - 1) / blockblob.MaxBlocks
	}
	upload := func() error {
		if size < blockSize {
			// One Put Blob, atomic, with the whole file's MD5 checked by the service.
			var body io.ReadSeekCloser = nopSeekCloser{io.NewSectionReader(f, 0, size)}
			if opts.Progress != nil {
				body = streaming.NewRequestProgress(body, func(n int64) { opts.Progress(n, size) })
			}
			_, err := bb.Upload(ctx, body, &blockblob.UploadOptions{
				TransactionalValidation: blob.TransferValidationTypeMD5(sums.md5),
				HTTPHeaders:             headers,
				Metadata:                metadata,
			})
			return err
		}
		// Staged blocks, each with a CRC64 the service checks, committed at once.
		// The reader re-hashes the file and fails at its end, before the commit,
		// if the file changed since it was hashed.
		r := &progressReader{ctx: ctx, r: io.NewSectionReader(f, 0, size), total: size, fn: opts.Progress,
			h: sha256.New(), want: sums.sha256}
		_, err := bb.UploadStream(ctx, r, &blockblob.UploadStreamOptions{
			BlockSize:               blockSize,
			Concurrency:             opts.concurrency(),
			TransactionalValidation: blob.TransferValidationTypeComputeCRC64(),
			HTTPHeaders:             headers,
			Metadata:                metadata,
		})
		return err
	}
	log.Info("uploading", "file", localFile, "url", res.URL, "size", size, "credential", cred.String())
	err = upload()
	if isCode(err, "ContainerNotFound") {
		// Deleted meanwhile, or GetProperties was not allowed to tell.
		created, cerr := ensureContainer(ctx, cc, cred, op)
		if cerr != nil {
			return nil, cerr
		}
		res.CreatedContainer = res.CreatedContainer || created
		err = upload()
	}
	if res.CreatedContainer {
		log.Info("created container", "container", loc.ContainerURL())
	}
	if err != nil {
		return nil, classify(op, cred, err)
	}

	props, err = bb.GetProperties(ctx, nil)
	if err != nil {
		return nil, classify(op+": check after upload", cred, err)
	}
	if props.ContentLength == nil || *props.ContentLength != size {
		got := int64(-1)
		if props.ContentLength != nil {
			got = *props.ContentLength
		}
		return nil, fmt.Errorf("%s: blob has %d bytes after upload, file has %d: %w", op, got, size, manifest.ErrVerify)
	}
	if got := metaValue(props.Metadata, MetaSHA256); got != sums.sha256 {
		return nil, fmt.Errorf("%s: blob metadata sha256 %q after upload, file has %s: %w", op, got, sums.sha256, manifest.ErrVerify)
	}
	if got := metaValue(props.Metadata, MetaHeadSHA256); head != "" && got != head {
		return nil, fmt.Errorf("%s: blob metadata head sha256 %q after upload, file has %s: %w", op, got, head, manifest.ErrVerify)
	}
	if len(props.ContentMD5) > 0 && !bytes.Equal(props.ContentMD5, sums.md5) {
		return nil, fmt.Errorf("%s: blob Content-MD5 differs from the file's after upload: %w", op, manifest.ErrVerify)
	}
	res.ETag = etagString(props.ETag)
	log.Info("uploaded", "url", res.URL, "size", size, "sha256", sums.sha256)
	return res, nil
}

// Put uploads data as the blob named by url in one atomic Put Blob with a
// transactional Content-MD5, creating the container when missing. The blob
// gets a content type from its extension and its sha256 in metadata. It is
// meant for small objects such as index.json.
func Put(ctx context.Context, url string, data []byte, opts ...Options) error {
	o := optionsOf(opts)
	loc, err := ParseURL(url)
	if err != nil {
		return err
	}
	if loc.IsPrefix() {
		return fmt.Errorf("put %s: the URL names a container or prefix, not a blob: %w", loc, ErrBadURL)
	}
	op := "put " + loc.display(loc.Path)
	cc, cred, err := newContainerClient(loc, o)
	if err != nil {
		return err
	}
	bb := cc.NewBlockBlobClient(loc.Path)
	sum := sha256.Sum256(data)
	md := md5.Sum(data)
	upload := func() error {
		_, err := bb.Upload(ctx, nopSeekCloser{bytes.NewReader(data)}, &blockblob.UploadOptions{
			TransactionalValidation: blob.TransferValidationTypeMD5(md[:]),
			HTTPHeaders: &blob.HTTPHeaders{
				BlobContentMD5:  md[:],
				BlobContentType: ptr(contentType(loc.Path)),
			},
			Metadata: map[string]*string{MetaSHA256: ptr(hex.EncodeToString(sum[:]))},
		})
		return err
	}
	err = upload()
	if isCode(err, "ContainerNotFound") {
		if _, cerr := ensureContainer(ctx, cc, cred, op); cerr != nil {
			return cerr
		}
		err = upload()
	}
	if err != nil {
		return classify(op, cred, err)
	}
	o.log().Info("put blob", "url", loc.display(loc.Path), "size", len(data))
	return nil
}

// ensureContainer creates the container, tolerating a concurrent creator.
func ensureContainer(ctx context.Context, cc *container.Client, cred credKind, op string) (bool, error) {
	_, err := cc.Create(ctx, nil)
	switch {
	case err == nil:
		return true, nil
	case isCode(err, "ContainerAlreadyExists"):
		return false, nil
	default:
		return false, classify(op+": create container", cred, err)
	}
}

// sums is what hashReader computed.
type sums struct {
	n      int64
	sha256 string
	md5    []byte
}

// headSHA256 is the hex sha256 of the SHA256SUMS entry of the bundle in
// f, or "" when f is not a bundle (Push uploads any file).
func headSHA256(f *os.File, size int64) string {
	rd, err := manifest.NewReader(io.NewSectionReader(f, 0, size))
	if err != nil {
		return ""
	}
	h := sha256.Sum256(rd.Sums())
	return hex.EncodeToString(h[:])
}

// hashReader reads r to the end, returning its length, sha256 and MD5. It
// stops when ctx is done.
func hashReader(ctx context.Context, r io.Reader) (sums, error) {
	sh, mh := sha256.New(), md5.New()
	n, err := io.CopyBuffer(io.MultiWriter(sh, mh), ctxio.NewReader(ctx, r), make([]byte, 256<<10))
	if err != nil {
		return sums{}, err
	}
	return sums{n: n, sha256: hex.EncodeToString(sh.Sum(nil)), md5: mh.Sum(nil)}, nil
}

// progressReader reports bytes read to fn and honours ctx. With h set it
// hashes what it reads and, at EOF, fails with manifest.ErrVerify unless
// exactly total bytes with sha256 want went by.
type progressReader struct {
	ctx   context.Context
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
	h     hash.Hash
	want  string
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		if p.h != nil {
			p.h.Write(b[:n])
		}
		if p.fn != nil {
			p.fn(p.done, p.total)
		}
	}
	if err == io.EOF && p.h != nil {
		if got := hex.EncodeToString(p.h.Sum(nil)); p.done != p.total || got != p.want {
			return n, fmt.Errorf("the file changed while it was uploaded (%d bytes, sha256 %s; before: %d bytes, %s); nothing was committed: %w",
				p.done, got, p.total, p.want, manifest.ErrVerify)
		}
	}
	return n, err
}

type nopSeekCloser struct{ io.ReadSeeker }

func (nopSeekCloser) Close() error { return nil }

func ptr[T any](v T) *T { return &v }

// metaValue looks a metadata key up case-insensitively (HTTP header
// canonicalisation changes its case on the way back).
func metaValue(m map[string]*string, key string) string {
	for k, v := range m {
		if strings.EqualFold(k, key) && v != nil {
			return *v
		}
	}
	return ""
}

func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	switch {
	case ext == ".tar":
		return "application/x-tar"
	case ext == ".json":
		return "application/json"
	case ext == ".txt" || path.Base(name) == "SHA256SUMS":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(ext); ext != "" && t != "" {
		return t
	}
	return "application/octet-stream"
}
