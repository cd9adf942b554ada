// Package blob carries ccmirror bundles to and from Azure Blob Storage:
// Push and Pull whole files with integrity checks and resumable downloads,
// Open a blob as a stream (install from a blob URL), and Put/List small
// objects such as the mirror job's index.json.
//
// URLs name a container, a prefix or a blob, on Azure
// (https://ACCOUNT.blob.core.windows.net/CONTAINER/...) or Azurite
// (http://127.0.0.1:10000/devstoreaccount1/CONTAINER/...). Credentials are
// tried in this order: a SAS token in the URL; AZURE_STORAGE_CONNECTION_STRING;
// AZURE_STORAGE_KEY as a shared key (account from the URL or
// AZURE_STORAGE_ACCOUNT); else azidentity's DefaultAzureCredential (a managed
// identity on a CycleCloud VM). Every storage, network or credential failure
// is one line and matches ErrUpstream (errclass.ErrUpstream, exit 3); size and
// hash mismatches match manifest.ErrVerify (exit 4); a malformed URL matches
// errclass.ErrUsage (exit 2). Package transport decides which arguments are
// blob URLs.
package blob

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Environment variables read for credentials.
const (
	EnvConnectionString = "AZURE_STORAGE_CONNECTION_STRING"
	EnvAccountKey       = "AZURE_STORAGE_KEY"
	EnvAccountName      = "AZURE_STORAGE_ACCOUNT"
)

// Blob metadata keys Push sets: MetaSHA256 holds the hex sha256 of the
// content; MetaHeadSHA256, on a bundle only, the hex sha256 of its
// SHA256SUMS entry (the signed head, which binds manifest.json and every
// payload byte through their hashes).
const (
	MetaSHA256     = "ccmirror_sha256"
	MetaHeadSHA256 = "ccmirror_head_sha256"
)

// Defaults for Options.
const (
	DefaultBlockSize   = 8 << 20
	DefaultConcurrency = 4
)

// Options tune a transfer. The zero value works.
type Options struct {
	// Log receives progress and decisions (resume, container created); nil
	// discards.
	Log *slog.Logger
	// Progress, when set, is called with bytes done and total as data moves
	// (for Pull, done is the bytes in place from the start: what a resume
	// would keep).
	Progress func(done, total int64)
	// BlockSize is the upload block size and the size of the ranges Pull
	// downloads; 0 means DefaultBlockSize, and for Pull the blob split
	// evenly among Concurrency ranges when those are larger (at most 4x
	// DefaultBlockSize each).
	BlockSize int64
	// Concurrency is the number of blocks uploaded at once (0 means
	// DefaultConcurrency) and of ranges Pull downloads at once (0 means
	// DefaultPullConcurrency).
	Concurrency int
	// MaxRetries is the SDK's retry count per request and per broken
	// download stream; 0 means the SDK default (3), negative means none.
	MaxRetries int32
	// Transport sends the HTTP requests; nil means the SDK default. An
	// *http.Client fits.
	Transport policy.Transporter
	// PerCallPolicies are added to the SDK pipeline (observability, tests).
	PerCallPolicies []policy.Policy
	// Check, for Pull, is given every byte of the blob in order as the
	// download makes them contiguous (on its own goroutine, while the
	// download goes on), and must read r to io.EOF. A non-nil error stops
	// the download and fails the Pull with a *CheckError; the partial file
	// is removed unless the error is a cancellation. wantSHA256 says
	// whether Pull needs the sha256 of every byte from it: false when the
	// blob records its bundle head's hash (MetaHeadSHA256), which then
	// suffices (see Checked).
	Check func(r io.Reader, wantSHA256 bool) (Checked, error)
}

// Checked is what an Options.Check found in the bytes it read.
type Checked struct {
	// SHA256 is the hex sha256 of every byte read; "" when not computed
	// (Pull then hashes the file itself if it needs the sum).
	SHA256 string
	// HeadSHA256 is the hex sha256 of the bundle's SHA256SUMS entry, ""
	// when the check does not know it. When the blob records one
	// (MetaHeadSHA256) and the check found one, they must be equal, and
	// that alone identifies the content: the check proved every payload
	// and manifest.json against that SHA256SUMS.
	HeadSHA256 string
}

// CheckError is a Pull's Options.Check failing.
type CheckError struct {
	URL string // the blob, SAS redacted
	Err error
}

func (e *CheckError) Error() string { return e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

func (o Options) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (o Options) blockSize() int64 {
	if o.BlockSize > 0 {
		return o.BlockSize
	}
	return DefaultBlockSize
}

func (o Options) concurrency() int {
	if o.Concurrency > 0 {
		return o.Concurrency
	}
	return DefaultConcurrency
}

func (o Options) readRetries() int32 {
	if o.MaxRetries <= 0 {
		return 3
	}
	return o.MaxRetries
}

func optionsOf(opts []Options) Options {
	if len(opts) == 0 {
		return Options{}
	}
	return opts[0]
}

func (o Options) clientOptions() *container.ClientOptions {
	return &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport:       o.Transport,
		PerCallPolicies: o.PerCallPolicies,
		Retry:           policy.RetryOptions{MaxRetries: o.MaxRetries},
	}}
}

// credKind names the credential a client uses.
type credKind int

const (
	credSAS credKind = iota
	credConnSAS
	credConnKey
	credKey
	credIdentity
)

func (c credKind) String() string {
	switch c {
	case credSAS:
		return "SAS token in the URL"
	case credConnSAS:
		return "SAS token from " + EnvConnectionString
	case credConnKey:
		return "account key from " + EnvConnectionString
	case credKey:
		return "account key from " + EnvAccountKey
	default:
		return "Azure identity"
	}
}

// hint tells the user what to check when the service answered 403.
func (c credKind) hint(code string) string {
	perm := strings.HasPrefix(code, "AuthorizationPermission") || code == "AuthorizationResourceTypeMismatch"
	switch c {
	case credSAS, credConnSAS:
		if perm {
			return "the " + c.String() + " lacks a permission needed here (read, write, create, list)"
		}
		return "the " + c.String() + " was rejected: check its signature, expiry, permissions and allowed IPs"
	case credConnKey, credKey:
		return "the " + c.String() + " was rejected: check the key and the account name"
	default:
		if perm {
			return "the Azure identity lacks a data-plane role on the container (e.g. Storage Blob Data Contributor)"
		}
		return "the Azure identity was rejected; " + credentialHelp
	}
}

// connString holds what ccmirror uses from a storage connection string.
type connString struct {
	AccountName string
	AccountKey  string
	SAS         string
}

// devAccount and devKey are Azurite's well-known development account.
const (
	devAccount = "devstoreaccount1"
	devKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// parseConnectionString reads "Key=Value;..." pairs. Endpoints in it are
// ignored: the URL given to ccmirror names the endpoint. Errors never show
// the key.
func parseConnectionString(s string) (connString, error) {
	var cs connString
	dev := false
	for i, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return connString{}, fmt.Errorf("connection string: segment %d has no '=' (expected Key=Value;...)", i+1)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "accountname":
			cs.AccountName = v
		case "accountkey":
			cs.AccountKey = v
		case "sharedaccesssignature":
			cs.SAS = strings.TrimPrefix(v, "?")
		case "usedevelopmentstorage":
			dev = strings.EqualFold(v, "true")
		case "defaultendpointsprotocol", "endpointsuffix", "blobendpoint", "queueendpoint",
			"tableendpoint", "fileendpoint", "developmentstorageproxyuri":
		default:
			// The name is not echoed: a mangled string may put key material there.
			return connString{}, fmt.Errorf("connection string: segment %d has an unknown key (known: AccountName, AccountKey, SharedAccessSignature, UseDevelopmentStorage, DefaultEndpointsProtocol, EndpointSuffix, BlobEndpoint)", i+1)
		}
	}
	if dev && cs.AccountName == "" && cs.AccountKey == "" && cs.SAS == "" {
		cs.AccountName, cs.AccountKey = devAccount, devKey
	}
	switch {
	case cs.SAS != "":
		if !strings.Contains(cs.SAS, "sig=") {
			return connString{}, fmt.Errorf("connection string: SharedAccessSignature has no sig=")
		}
	case cs.AccountName == "" || cs.AccountKey == "":
		return connString{}, fmt.Errorf("connection string: needs AccountName and AccountKey, or SharedAccessSignature")
	default:
		if _, err := base64.StdEncoding.DecodeString(cs.AccountKey); err != nil {
			return connString{}, fmt.Errorf("connection string: AccountKey is not base64")
		}
	}
	return cs, nil
}

// newContainerClient builds a client for loc's container with the first
// credential available, in the package's documented order.
func newContainerClient(loc *Location, o Options) (*container.Client, credKind, error) {
	op := "credential for " + loc.display(loc.Path)
	copts := o.clientOptions()
	if loc.SAS != "" {
		if exp, ok := sasExpiry(loc.SAS); ok && time.Now().After(exp) {
			return nil, credSAS, authError(op, "the SAS token in the URL expired at "+exp.UTC().Format(time.RFC3339), nil)
		}
		c, err := container.NewClientWithNoCredential(loc.withSAS(loc.ContainerURL()), copts)
		if err != nil {
			return nil, credSAS, authError(op, "SAS token: "+firstLine(err.Error()), err)
		}
		return c, credSAS, nil
	}
	if s := os.Getenv(EnvConnectionString); strings.TrimSpace(s) != "" {
		cs, err := parseConnectionString(s)
		if err != nil {
			return nil, credConnKey, authError(op, EnvConnectionString+": "+err.Error(), nil)
		}
		if cs.SAS != "" {
			c, err := container.NewClientWithNoCredential(loc.ContainerURL()+"?"+cs.SAS, copts)
			if err != nil {
				return nil, credConnSAS, authError(op, EnvConnectionString+": "+firstLine(err.Error()), err)
			}
			return c, credConnSAS, nil
		}
		if loc.Account != "" && !strings.EqualFold(cs.AccountName, loc.Account) {
			return nil, credConnKey, authError(op, fmt.Sprintf("%s is for account %q but the URL names account %q", EnvConnectionString, cs.AccountName, loc.Account), nil)
		}
		c, err := sharedKeyClient(loc, cs.AccountName, cs.AccountKey, copts)
		if err != nil {
			return nil, credConnKey, authError(op, EnvConnectionString+": "+firstLine(err.Error()), err)
		}
		return c, credConnKey, nil
	}
	if key := strings.TrimSpace(os.Getenv(EnvAccountKey)); key != "" {
		account := loc.Account
		envAccount := strings.TrimSpace(os.Getenv(EnvAccountName))
		switch {
		case account == "" && envAccount == "":
			return nil, credKey, authError(op, EnvAccountKey+" is set but the account name is unknown: set "+EnvAccountName, nil)
		case account == "":
			account = envAccount
		case envAccount != "" && !strings.EqualFold(envAccount, account):
			return nil, credKey, authError(op, fmt.Sprintf("%s=%q but the URL names account %q", EnvAccountName, envAccount, account), nil)
		}
		c, err := sharedKeyClient(loc, account, key, copts)
		if err != nil {
			return nil, credKey, authError(op, EnvAccountKey+": "+firstLine(err.Error()), err)
		}
		return c, credKey, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: o.Transport},
	})
	if err != nil {
		return nil, credIdentity, authError(op, fmt.Sprintf("no credential found (%s); %s", firstLine(err.Error()), credentialHelp), err)
	}
	c, err := container.NewClient(loc.ContainerURL(), cred, copts)
	if err != nil {
		return nil, credIdentity, authError(op, firstLine(err.Error()), err)
	}
	return c, credIdentity, nil
}

// sasExpiry returns the expiry (se=) of a SAS query when it parses.
func sasExpiry(query string) (time.Time, bool) {
	q, err := url.ParseQuery(query)
	if err != nil {
		return time.Time{}, false
	}
	se := q.Get("se")
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, se); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func sharedKeyClient(loc *Location, account, key string, copts *container.ClientOptions) (*container.Client, error) {
	cred, err := container.NewSharedKeyCredential(account, key)
	if err != nil {
		return nil, fmt.Errorf("account key: %w", err)
	}
	return container.NewClientWithSharedKeyCredential(loc.ContainerURL(), cred, copts)
}
