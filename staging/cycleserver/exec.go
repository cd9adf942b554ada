package cycleserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

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
// DefaultPath. Errors are one line naming the command and what went wrong.
func Records(ctx context.Context, cyclePath string) ([]Project, error) {
	if cyclePath == "" {
		cyclePath = DefaultPath
	}
	out, jerr := run(ctx, cyclePath, "execute", "-format", "json", Query)
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
	out, err := run(ctx, cyclePath, "execute", Query)
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
// unsuccessfully (as opposed to not starting or being cancelled).
func ranAndFailed(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// run executes the command and returns its standard output. A failure
// carries the first line of standard error.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr capBuffer
	stdout.max, stderr.max = maxOutput, 64<<10
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		if msg := firstLine(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	if stdout.over {
		return nil, fmt.Errorf("output larger than %d MiB", maxOutput>>20)
	}
	return stdout.Bytes(), nil
}

// capBuffer keeps at most max bytes and notes when more were written.
type capBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.over = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
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
