package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/ccmirror/ccmirror/internal/errclass"

	"github.com/ccmirror/ccmirror/manifest"
)

// ErrUpstream marks every failure caused by the connected side's upstream:
// the network, a GitHub error, a rate limit that resets too late, a release
// or blob that cannot be found. The CLI maps it to exit code 3.
var ErrUpstream = errclass.ErrUpstream

// upstreamError carries a readable message for an upstream failure while
// matching ErrUpstream (and the underlying cause) with errors.Is and As.
type upstreamError struct {
	msg string
	err error // the cause, may be nil
}

func (e *upstreamError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *upstreamError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrUpstream}
	}
	return []error{ErrUpstream, e.err}
}

// upstreamf returns an error matching ErrUpstream with a formatted message.
func upstreamf(format string, args ...any) error {
	return &upstreamError{msg: fmt.Sprintf(format, args...)}
}

// upstreamWrap returns an error matching ErrUpstream and cause with msg as
// context. A cause that already matches ErrUpstream, a cancellation and a
// verification failure are only given context: they are not the upstream's
// fault.
func upstreamWrap(cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if errors.Is(cause, ErrUpstream) || errors.Is(cause, context.Canceled) ||
		errors.Is(cause, context.DeadlineExceeded) || errors.Is(cause, manifest.ErrVerify) {
		return fmt.Errorf("%s: %w", msg, cause)
	}
	return &upstreamError{msg: msg, err: cause}
}
