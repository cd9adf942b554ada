package blob

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/ccmirror/ccmirror/internal/errclass"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/ccmirror/ccmirror/manifest"
)

// ErrUpstream is errclass.ErrUpstream (also mirror.ErrUpstream): every failure of the storage service,
// the network or the credential matches it (the CLI exits 3).
var ErrUpstream = errclass.ErrUpstream

// ErrAuth marks a missing, malformed or rejected credential (HTTP 403,
// AuthenticationFailed, AuthorizationFailure, no Azure identity). Such errors
// also match ErrUpstream.
var ErrAuth = errors.New("access denied")

// ErrNotFound marks a container or blob that does not exist (HTTP 404).
// Such errors also match ErrUpstream.
var ErrNotFound = errors.New("not found")

// remoteError is a one-line message for a storage failure that matches
// ErrUpstream, an optional marker (ErrAuth, ErrNotFound) and the SDK's cause
// with errors.Is/As, while its text never spans lines or shows a SAS.
type remoteError struct {
	msg    string
	marker error
	cause  error
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Unwrap() []error {
	errs := []error{ErrUpstream}
	if e.marker != nil {
		errs = append(errs, e.marker)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// authError returns a one-line credential error for op.
func authError(op, detail string, cause error) error {
	return &remoteError{msg: oneLine(op + ": " + detail), marker: ErrAuth, cause: cause}
}

// classify turns an SDK error from op into a one-line error. cred names the
// credential in use, for the hint on a 403. Cancellation stays cancellation.
func classify(op string, cred credKind, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, manifest.ErrVerify) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		status := fmt.Sprintf("HTTP %d", re.StatusCode)
		if code != "" {
			status += " " + code
		}
		switch {
		case re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized ||
			strings.HasPrefix(code, "Authentication") || strings.HasPrefix(code, "Authorization") ||
			code == "InvalidAuthenticationInfo" || code == "NoAuthenticationInformation":
			return authError(op, fmt.Sprintf("access denied (%s): %s", status, cred.hint(code)), err)
		case re.StatusCode == http.StatusNotFound:
			what := "not found"
			switch code {
			case "ContainerNotFound":
				what = "container not found"
			case "BlobNotFound":
				what = "blob not found"
			}
			return &remoteError{msg: oneLine(fmt.Sprintf("%s: %s (%s)", op, what, status)), marker: ErrNotFound, cause: err}
		case re.StatusCode == http.StatusPreconditionFailed:
			return &remoteError{msg: oneLine(fmt.Sprintf("%s: the blob changed while it was being read (%s); run again", op, status)), cause: err}
		default:
			return &remoteError{msg: oneLine(fmt.Sprintf("%s: storage service error (%s)", op, status)), cause: err}
		}
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		return authError(op, "Azure identity could not get a token: "+firstLine(afe.Error()), err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return &remoteError{msg: oneLine(fmt.Sprintf("%s: cannot reach %s: %s", op, host, firstLine(ue.Err.Error()))), cause: err}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &remoteError{msg: oneLine(fmt.Sprintf("%s: network error: %s", op, firstLine(ne.Error()))), cause: err}
	}
	if cred == credIdentity {
		// Token acquisition failed without an HTTP answer from storage: no
		// managed identity, no az login, or a bearer token over plain http.
		return authError(op, fmt.Sprintf("no usable Azure credential (%s); %s", firstLine(err.Error()), credentialHelp), err)
	}
	return &remoteError{msg: oneLine(fmt.Sprintf("%s: %s", op, firstLine(err.Error()))), cause: err}
}

// credentialHelp lists the ways to supply a credential, for error messages.
const credentialHelp = "put a SAS token in the URL, or set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY (with AZURE_STORAGE_ACCOUNT for a custom domain), or use a managed identity"

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

var newlines = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

var sigRE = regexp.MustCompile(`(?i)(sig=)[^&\s"']+`)

// oneLine flattens s to a single line and redacts SAS signatures.
func oneLine(s string) string {
	s = strings.TrimSpace(newlines.Replace(s))
	return sigRE.ReplaceAllString(s, "${1}REDACTED")
}

// isCode reports whether err is a storage response carrying one of codes.
func isCode(err error, codes ...string) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	for _, c := range codes {
		if re.ErrorCode == c {
			return true
		}
	}
	return false
}
