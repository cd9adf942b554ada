package blob

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

// ErrBadURL marks a URL that does not name an Azure Blob Storage container,
// prefix or blob. It is a usage problem, not an upstream failure: it matches
// errclass.ErrUsage (exit 2).
var ErrBadURL error = badURL{}

type badURL struct{}

func (badURL) Error() string        { return "bad blob URL" }
func (badURL) Is(target error) bool { return target == errclass.ErrUsage }

// maxBlobName is Azure's limit on the length of a blob name.
const maxBlobName = 1024

// Location is a parsed Azure Blob Storage URL: a container, optionally a
// prefix (ending in "/") or a blob name inside it, and optionally a SAS token.
type Location struct {
	// Scheme is "https" or "http" (Azurite).
	Scheme string
	// Host is the endpoint host, with its port when the URL has one.
	Host string
	// PathStyle is true when the account name is the first path segment
	// (Azurite and IP endpoints: http://127.0.0.1:10000/devstoreaccount1/...).
	PathStyle bool
	// Account is the storage account name, "" when the host does not tell
	// (a custom domain); AZURE_STORAGE_ACCOUNT then supplies it.
	Account string
	// Container is the container name.
	Container string
	// Path is the blob name, or a prefix ending in "/", or "" for the
	// container itself.
	Path string
	// SAS is the raw SAS query string without "?", "" when the URL has none.
	SAS string
}

// ParseURL parses a container, prefix or blob URL:
//
//	https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix/][blob][?SAS]
//	http://127.0.0.1:10000/devstoreaccount1/CONTAINER[/prefix/][blob][?SAS]
//
// Hosts that are an IP address, "localhost" or a single DNS label use the
// path style (account first), as Azurite does. A query string must be a SAS
// token (it carries sig=). Errors wrap ErrBadURL and never echo the SAS.
func ParseURL(s string) (*Location, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("blob URL %s: %s: %w", redactURL(s), fmt.Sprintf(format, args...), ErrBadURL)
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, bad("not a URL")
	}
	switch u.Scheme {
	case "https", "http":
	case "":
		return nil, bad("missing https:// scheme")
	default:
		return nil, bad("scheme %q is not https or http", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, bad("missing host")
	}
	if u.User != nil {
		return nil, bad("user information is not allowed in the URL")
	}
	if u.Fragment != "" || strings.HasSuffix(u.String(), "#") {
		return nil, bad("a '#' fragment is not allowed (escape it as %%23 in a blob name)")
	}
	hostname := u.Hostname()
	if hostname == "" {
		return nil, bad("missing host")
	}
	loc := &Location{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}

	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return nil, bad("malformed query string")
		}
		if q.Get("sig") == "" {
			return nil, bad("the query string is not a SAS token (no sig=)")
		}
		loc.SAS = u.RawQuery
	}

	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	loc.PathStyle = pathStyleHost(hostname)
	if loc.PathStyle {
		if len(segs) == 0 || segs[0] == "" {
			return nil, bad("missing account name (path-style URL: /ACCOUNT/CONTAINER/...)")
		}
		if !validPathAccount(segs[0]) {
			return nil, bad("invalid account name %q", segs[0])
		}
		loc.Account = segs[0]
		segs = segs[1:]
	} else {
		label := strings.ToLower(hostname)
		if i := strings.IndexByte(label, '.'); i >= 0 && strings.Contains(label[i:], ".blob.") {
			label = label[:i]
			if !validAccount(label) {
				return nil, bad("invalid account name %q (3-24 lowercase letters and digits)", label)
			}
			loc.Account = label
		}
	}
	if len(segs) == 0 || segs[0] == "" {
		return nil, bad("missing container name")
	}
	if !validContainer(segs[0]) {
		return nil, bad("invalid container name %q (3-63 lowercase letters, digits and single hyphens)", segs[0])
	}
	loc.Container = segs[0]
	rest := segs[1:]
	for i, seg := range rest {
		last := i == len(rest)-1
		switch {
		case seg == "" && !last:
			return nil, bad("empty path segment in blob name")
		case seg == "." || seg == "..":
			return nil, bad("'.' and '..' are not allowed in a blob name")
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return nil, bad("control character in blob name")
			}
		}
	}
	loc.Path = strings.Join(rest, "/")
	if len(loc.Path) > maxBlobName {
		return nil, bad("blob name longer than %d characters", maxBlobName)
	}
	return loc, nil
}

// IsBlobURL reports whether s looks like a blob storage URL (http:// or
// https://) rather than a local path, for commands that take either.
func IsBlobURL(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// KnownHost reports whether hostname is a blob storage endpoint whose
// account the URL itself names: ACCOUNT.blob.… (any Azure cloud) or a
// path-style host (see pathStyleHost). Any other host is a custom domain,
// usable only when AZURE_STORAGE_ACCOUNT or a connection string names the
// account.
func KnownHost(hostname string) bool {
	h := strings.ToLower(hostname)
	if i := strings.IndexByte(h, '.'); i > 0 && strings.Contains(h[i:], ".blob.") {
		return true
	}
	return pathStyleHost(h)
}

// pathStyleHost reports whether a host carries the account in the path:
// IP addresses, localhost and single-label names (a container such as "azurite").
func pathStyleHost(hostname string) bool {
	if net.ParseIP(hostname) != nil {
		return true
	}
	h := strings.ToLower(hostname)
	return h == "localhost" || !strings.Contains(h, ".")
}

func validAccount(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// validPathAccount accepts Azurite's account names (AZURITE_ACCOUNTS allows
// more than Azure's lowercase-only rule).
func validPathAccount(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

func validContainer(s string) bool {
	switch s {
	case "$root", "$web", "$logs":
		return true
	}
	if len(s) < 3 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// IsPrefix reports whether the location names a container or a prefix
// ("dir/") rather than one blob.
func (l *Location) IsPrefix() bool {
	return l.Path == "" || strings.HasSuffix(l.Path, "/")
}

// BlobName returns the blob a local file maps to: the location's blob name,
// or, when the location is a container or a prefix, the file's base name
// under that prefix.
func (l *Location) BlobName(localFile string) string {
	if !l.IsPrefix() {
		return l.Path
	}
	return l.Path + filepath.Base(localFile)
}

// ServiceURL returns the account endpoint without SAS, ending in "/".
func (l *Location) ServiceURL() string {
	s := l.Scheme + "://" + l.Host + "/"
	if l.PathStyle {
		s += l.Account + "/"
	}
	return s
}

// ContainerURL returns the container's URL without SAS.
func (l *Location) ContainerURL() string {
	return l.ServiceURL() + l.Container
}

// BlobURL returns the URL of blob name in the location's container, escaped,
// without SAS.
func (l *Location) BlobURL(name string) string {
	return l.ContainerURL() + "/" + escapeBlobName(name)
}

// withSAS appends the location's SAS token to u.
func (l *Location) withSAS(u string) string {
	if l.SAS == "" {
		return u
	}
	return u + "?" + l.SAS
}

// String returns the location's URL with the SAS signature redacted: safe to
// print and log.
func (l *Location) String() string {
	u := l.ContainerURL()
	if l.Path != "" {
		u += "/" + escapeBlobName(l.Path)
	}
	if l.SAS != "" {
		u += "?" + redactQuery(l.SAS)
	}
	return u
}

// display returns the URL of blob name without any SAS, for messages.
func (l *Location) display(name string) string {
	return l.BlobURL(name)
}

func escapeBlobName(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// redactQuery replaces the value of every sig= parameter with REDACTED.
func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(k, "sig") {
			parts[i] = k + "=REDACTED"
		}
	}
	return strings.Join(parts, "&")
}

// Redact returns s with the value of any sig= (a SAS token's signature)
// replaced by REDACTED, for messages about URLs.
func Redact(s string) string { return redactURL(s) }

// redactURL redacts any sig= in a raw URL string, for error messages about
// URLs that did not parse.
func redactURL(s string) string {
	base, q, ok := strings.Cut(s, "?")
	if !ok {
		return s
	}
	frag := ""
	if i := strings.IndexByte(q, '#'); i >= 0 {
		q, frag = q[:i], q[i:]
	}
	return base + "?" + redactQuery(q) + frag
}
