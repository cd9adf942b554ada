package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/internal/child"
	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/transport"
	"github.com/ccmirror/ccmirror/transport/blob"
)

// rootFlag is --root bound to dest, shared by install, status and plan.
func rootFlag(dest *string) cli.Flag {
	return &cli.StringFlag{Name: "root", EnvVars: []string{"CCMIRROR_ROOT"}, Value: staging.DefaultRoot, Destination: dest,
		Usage: "CycleCloud installation `DIR`; projects are staged under DIR/work/staging/projects"}
}

// timeoutFlag bounds each outside command ccmirror runs (cycle_server,
// cyclecloud project build).
func timeoutFlag(dest *time.Duration, what string) cli.Flag {
	return &cli.DurationFlag{Name: "timeout", Value: child.DefaultTimeout, Destination: dest,
		Usage: "`DURATION` " + what + " may run (it is killed, with everything it started, past it; or when it prints more than 64 MiB)"}
}

// stateDirFlag chooses ccmirror's own state folder (lock, journals, records).
func stateDirFlag(dest *string) cli.Flag {
	return &cli.StringFlag{Name: "state-dir", EnvVars: []string{"CCMIRROR_STATE_DIR"}, Destination: dest,
		Usage: "`DIR` where ccmirror keeps its lock, journals and install records; only root may write it and its parents (default: " + staging.DefaultStateBase + "/<one folder per --root> as root)"}
}

// openBundle opens what a user named as a bundle (transport.Open: a file, a
// split bundle's first part or part list, a blob URL), checking a part
// list's signature under o.
func openBundle(ctx context.Context, e *env, arg string, o staging.VerifyOptions, quiet bool) (*transport.Bundle, error) {
	return transport.Open(ctx, arg, partListCheck(o), transport.WithBlobOptions(blob.Options{Log: e.logger(quiet)}))
}

// checkOutput fails before any work is done when path cannot be written as
// a file: it is a directory, or the directory it would go in is missing.
func checkOutput(verb, path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s: output %s is a directory", verb, path)
	}
	return checkDir(verb, "output directory", filepath.Dir(path))
}

// checkDir fails when dir is missing, not a directory, or not writable
// (permissions, a read-only file system): it creates a nameless file there
// (O_TMPFILE, so a kill leaves nothing behind; a named probe removed at
// once where the filesystem lacks it), so the error names dir rather than
// a temporary file in it.
func checkDir(verb, what, dir string) error {
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%s: %s %s does not exist", verb, what, dir)
	} else if !st.IsDir() {
		return fmt.Errorf("%s: %s %s is not a directory", verb, what, dir)
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return unix.Close(fd)
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".ccmirror-probe-*"); err == nil {
			f.Close()
			return os.Remove(f.Name())
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: cannot write in %s %s: %s", verb, what, dir, errclass.Describe(err))
}

// checkBundleHead fails when path is not a file holding a ccmirror bundle's
// head (SHA256SUMS, signature, manifest.json), before anything is written.
func checkBundleHead(ctx context.Context, path string) error {
	if st, err := os.Stat(path); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := transport.Open(ctx, path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := staging.Inspect(f); err != nil {
		return fmt.Errorf("not a ccmirror bundle: %w", err)
	}
	return nil
}

// wrapOnce prefixes err with "VERB ARG: " unless its message already starts
// with the verb and names arg, so messages do not say the same thing twice.
func wrapOnce(verb, arg string, err error) error {
	if m := err.Error(); strings.HasPrefix(m, verb) && strings.Contains(m, arg) {
		return err
	}
	return fmt.Errorf("%s %s: %w", verb, arg, err)
}
