// Package errclass holds the error classes that the CLI maps to exit codes.
// Every package marks its failures with one of these (wrapped with %w, or
// joined), so the CLI decides the exit code with errors.Is and no package
// has to import another only for its error values.
package errclass

import "errors"

var (
	// ErrUsage marks a wrong invocation: a bad flag value, a missing
	// argument. Exit code 2.
	ErrUsage = errors.New("usage")

	// ErrUpstream marks a failure of the connected side's upstream: the
	// network, a GitHub or storage service error, a rate limit that resets
	// too late, a release or blob that cannot be found. Exit code 3.
	ErrUpstream = errors.New("upstream unavailable")

	// ErrVerify marks content that failed a check: signature, hash, size,
	// unsafe or unlisted entries. Exit code 4.
	ErrVerify = errors.New("verification failed")

	// ErrConflict marks a change to staged content refused without --force,
	// or a lock held by another ccmirror. Exit code 5.
	ErrConflict = errors.New("conflict")
)
