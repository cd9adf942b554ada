package cycleserver

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/child"
	"github.com/ccmirror/ccmirror/internal/text"
)

// Query is the CycleCloud query that lists every project record.
const Query = "select * from cloud.project"

// DefaultPath is where a CycleCloud server installs its cycle_server command.
const DefaultPath = "/opt/cycle_server/cycle_server"

// maxOutput bounds how much output of cycle_server is read into memory.
const maxOutput = 64 << 20

// Records runs `cyclePath execute -format json 'select * from cloud.project'`
// and parses its output; when that command fails or prints something that is
// not JSON (older releases), it runs the query again without -format json
// and parses the default `Key = value` format. cyclePath "" means
// DefaultPath; each run may last timeout (0: child.DefaultTimeout) and
// print at most 64 MiB, and is killed with its process group past either.
// Errors are one line naming the command and what went wrong.
func Records(ctx context.Context, cyclePath string, timeout time.Duration) ([]Project, error) {
	if cyclePath == "" {
		cyclePath = DefaultPath
	}
	out, jerr := run(ctx, timeout, cyclePath, "execute", "-format", "json", Query)
	if jerr == nil {
		recs, perr := ParseJSON(out)
		if perr == nil {
			return recs, nil
		}
		jerr = perr
	} else if !ranAndFailed(jerr) {
		// Could not start it at all, or cancelled: trying again is pointless.
		return nil, fmt.Errorf("%s: %w", describe(cyclePath, true), jerr)
	}
	out, err := run(ctx, timeout, cyclePath, "execute", Query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (with -format json: %s)", describe(cyclePath, false), err, text.OneLine(jerr.Error()))
	}
	recs, err := ParseRecords(out)
	if err != nil {
		return nil, fmt.Errorf("%s: output not understood: %w (with -format json: %s)", describe(cyclePath, false), err, text.OneLine(jerr.Error()))
	}
	return recs, nil
}

// describe renders the command line for messages.
func describe(cyclePath string, jsonFormat bool) string {
	if jsonFormat {
		return fmt.Sprintf("%s execute -format json '%s'", cyclePath, Query)
	}
	return fmt.Sprintf("%s execute '%s'", cyclePath, Query)
}

// ranAndFailed reports whether err means the command ran and exited
// unsuccessfully (as opposed to not starting, being cancelled, timing out
// or printing too much).
func ranAndFailed(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// run executes the command and returns its standard output. A failure
// carries the first line of standard error.
func run(ctx context.Context, timeout time.Duration, name string, args ...string) ([]byte, error) {
	res, err := child.Run(ctx, exec.Command(name, args...), child.Options{Timeout: timeout, MaxStdout: maxOutput})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		if msg := firstLine(string(res.Stderr)); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	return res.Stdout, nil
}

// firstLine returns the first non-blank line of s, clipped.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return clip(l)
		}
	}
	return ""
}
