// Package transport opens a bundle wherever a user says it is: a local file,
// a split bundle (its first part ".001" or its part list ".parts", package
// split), or a blob in Azure Blob Storage (package blob). The CLI calls Open
// for every BUNDLE argument, so each verb accepts the same forms and an
// unrecognised URL gets the same usage error.
//
// Transports move bytes; they import neither mirror nor staging. Their
// failures carry the error classes of internal/errclass: a malformed or
// unknown URL matches errclass.ErrUsage, a storage failure ErrUpstream, a
// part or blob that fails its recorded size or hash ErrVerify.
package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/transport/blob"
	"github.com/ccmirror/ccmirror/transport/split"
)

// Kind says which transport a bundle argument names.
type Kind int

const (
	// File is a local bundle file.
	File Kind = iota
	// Split is a split bundle, named by its first part or its part list.
	Split
	// Blob is a blob in Azure Blob Storage (or Azurite).
	Blob
)

// String names the kind as the CLI's messages do.
func (k Kind) String() string {
	switch k {
	case Split:
		return "split bundle"
	case Blob:
		return "blob"
	}
	return "file"
}

// URLForms lists, for error messages and help, the URL forms Open accepts.
const URLForms = "https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB (Azure Blob Storage, " +
	"a SAS token allowed) or http://127.0.0.1:PORT/devstoreaccount1/CONTAINER/BLOB (Azurite)"

// scheme matches a URL's scheme, "https://", "ftp://", "s3://".
var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// Classify says which transport arg names, without opening anything. A URL
// that is not a blob storage URL gets an error matching errclass.ErrUsage
// that lists the accepted forms; a blob URL that does not parse gets
// blob.ParseURL's error (also a usage error).
func Classify(arg string) (Kind, error) {
	if !scheme.MatchString(arg) {
		if split.IsSplit(arg) {
			return Split, nil
		}
		return File, nil
	}
	if err := CheckBlobURL(arg); err != nil {
		return 0, err
	}
	return Blob, nil
}

// CheckBlobURL fails, with an error matching errclass.ErrUsage, when s is
// not a URL of Azure Blob Storage: the host must be ACCOUNT.blob.… (any
// Azure cloud), a path-style endpoint (an IP address, localhost or a
// single-label host, as Azurite), or any host when AZURE_STORAGE_ACCOUNT names
// the account of a custom domain.
func CheckBlobURL(s string) error {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return unknownURL(s)
	}
	if !blob.KnownHost(u.Hostname()) && os.Getenv(blob.EnvAccountName) == "" && os.Getenv(blob.EnvConnectionString) == "" {
		return unknownURL(s)
	}
	_, err = blob.ParseURL(s)
	return err
}

func unknownURL(s string) error {
	return &usageError{fmt.Sprintf("%s: not a URL ccmirror can read a bundle from; accepted: %s; "+
		"for a custom domain set %s", blob.Redact(s), URLForms, blob.EnvAccountName)}
}

// usageError is a message that matches errclass.ErrUsage without saying so.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errclass.ErrUsage }

// Bundle is an open bundle stream.
type Bundle struct {
	io.ReadCloser
	// Kind is the transport the stream comes from.
	Kind Kind
	// Arg is the argument Open was given.
	Arg string
	// Size is the bundle's size when the transport knows it before reading
	// (a blob, a split bundle's list), else -1.
	Size int64
	// SHA256, when not nil, returns the hex sha256 of the whole bundle once
	// the stream was read to io.EOF, known to the transport without a second
	// hash of its bytes: a split bundle's reader (split.Reader.SHA256) has
	// then checked every part against its listed sha256. Before io.EOF, or
	// after a failed read, it returns an error. Nil for other transports.
	SHA256 func() (string, error)
}

// Option configures Open.
type Option func(*options)

type options struct {
	verify   func(msg, sig []byte) error
	insecure bool
	blob     blob.Options
}

// WithPartListCheck sets how a split bundle's part list signature is
// checked (msg is the list, sig its armored signature).
func WithPartListCheck(verify func(msg, sig []byte) error) Option {
	return func(o *options) { o.verify = verify }
}

// WithoutSignature accepts a split bundle whose part list is unsigned or
// not checked (--insecure-skip-signature, or inspect, which verifies
// nothing). Part and bundle hashes are still checked.
func WithoutSignature() Option { return func(o *options) { o.insecure = true } }

// WithBlobOptions passes options (a logger) to the blob transport.
func WithBlobOptions(bo blob.Options) Option { return func(o *options) { o.blob = bo } }

// Open opens the bundle arg names. A split bundle needs WithPartListCheck
// or WithoutSignature; without either its part list cannot be trusted and
// Open fails with errclass.ErrVerify.
func Open(ctx context.Context, arg string, opts ...Option) (*Bundle, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	kind, err := Classify(arg)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Kind: kind, Arg: arg, Size: -1}
	switch kind {
	case Blob:
		rc, size, err := blob.Open(ctx, arg, o.blob)
		if err != nil {
			return nil, err
		}
		b.ReadCloser, b.Size = rc, size
	case Split:
		verify := o.verify
		if o.insecure {
			verify = nil
		} else if verify == nil {
			return nil, fmt.Errorf("%s: no allowed_signers file to check the part list against (pass --allowed-signers FILE): %w", arg, errclass.ErrVerify)
		}
		rc, l, err := split.Open(ctx, arg, verify)
		if err != nil {
			return nil, err
		}
		b.ReadCloser, b.Size, b.SHA256 = rc, l.Size, rc.SHA256
	default:
		f, err := os.Open(arg)
		if err != nil {
			return nil, err
		}
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			b.Size = st.Size()
		}
		b.ReadCloser = f
	}
	if err := b.checkHead(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// FromReader is the bundle arriving as r (a download under way, say),
// named arg in messages, of size bytes (-1: unknown): its first tar header
// is checked as Open checks a file's. Close does not close r.
func FromReader(arg string, r io.Reader, size int64) (*Bundle, error) {
	b := &Bundle{Kind: File, Arg: arg, Size: size, ReadCloser: io.NopCloser(r)}
	if err := b.checkHead(); err != nil {
		return nil, err
	}
	return b, nil
}

// laterPart matches a split bundle part's suffix, ".002", ".0017".
var laterPart = regexp.MustCompile(`^(.+)\.([0-9]{3,})$`)

// checkHead reads the first tar header (kept for the consumer) and fails
// with words when the stream is not a ccmirror bundle: errclass.ErrVerify
// saying what it is instead, or, for a later part of a split bundle given
// on its own, a usage error naming the parts to give.
func (b *Bundle) checkHead() error {
	br := bufio.NewReaderSize(b.ReadCloser, headSize)
	head, err := br.Peek(headSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	b.ReadCloser = struct {
		io.Reader
		io.Closer
	}{br, b.ReadCloser}
	herr := checkHead(head)
	if herr == nil {
		return nil
	}
	if b.Kind == File {
		base := filepath.Base(b.Arg)
		if m := laterPart.FindStringSubmatch(base); m != nil {
			if n, _ := strconv.Atoi(m[2]); n > 1 {
				stem := filepath.Join(filepath.Dir(b.Arg), m[1])
				first := fmt.Sprintf("%s.%0*d", stem, len(m[2]), 1)
				return &usageError{fmt.Sprintf("this is part %d of a split bundle: give %s or %s%s", n, first, stem, split.ListSuffix)}
			}
		}
	}
	return herr
}

// Finish reads what a verifying consumer left (tar padding), so a split
// bundle's last part and a blob's recorded hash are checked too, and closes
// the stream. err is the consumer's result: when a split bundle failed
// verification, Finish reads on to the end of the part at fault so the
// error names that part. It returns the first failure.
func (b *Bundle) Finish(err error) error {
	switch {
	case err == nil:
		_, err = io.Copy(io.Discard, b)
	case errors.Is(err, errclass.ErrVerify) && b.Kind == Split:
		if _, perr := io.Copy(io.Discard, b); perr != nil {
			err = fmt.Errorf("%w; within it: %v", perr, err)
		}
	}
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}
