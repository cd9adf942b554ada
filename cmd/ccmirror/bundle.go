package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/split"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/mirror/blobstore"
	"github.com/ccmirror/ccmirror/staging"
)

// allowedSignersFlag is the trust flag shared by verify, install and pull.
func allowedSignersFlag() cli.Flag {
	return &cli.StringFlag{Name: "allowed-signers", EnvVars: []string{"CCMIRROR_ALLOWED_SIGNERS"},
		Usage: "OpenSSH allowed_signers `FILE` naming the keys whose bundles you trust"}
}

// rootFlag is --root, shared by install, status and plan.
func rootFlag() cli.Flag {
	return &cli.StringFlag{Name: "root", EnvVars: []string{"CCMIRROR_ROOT"}, Value: staging.DefaultRoot,
		Usage: "CycleCloud installation `DIR`; projects are staged under DIR/work/staging/projects"}
}

// stateDirFlag chooses ccmirror's own state folder (lock, journals, records).
func stateDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "state-dir", EnvVars: []string{"CCMIRROR_STATE_DIR"},
		Usage: "`DIR` where ccmirror keeps its lock, journals and install records; only root may write it and its parents (default: " + staging.DefaultStateBase + "/<one folder per --root> as root)"}
}

// trustOptions loads the allowed_signers file (when named) into verify
// options. Without one, only insecure mode proceeds; the signature check
// itself reports the missing file, so the error names what to pass.
func trustOptions(path string, insecure bool) (staging.VerifyOptions, error) {
	o := staging.VerifyOptions{InsecureSkipSignature: insecure}
	if path == "" {
		return o, nil
	}
	a, err := trust.LoadAllowedSigners(path)
	if err != nil {
		if strings.Contains(err.Error(), path) {
			return o, fmt.Errorf("allowed_signers: %w", err)
		}
		return o, fmt.Errorf("allowed_signers %s: %w", path, err)
	}
	o.Allowed = a
	return o, nil
}

// openBundle opens what a user named as a bundle: a local file, the first
// part or part list of a split bundle, or an Azure blob URL.
func openBundle(ctx context.Context, arg string, o staging.VerifyOptions) (io.ReadCloser, error) {
	if strings.HasPrefix(arg, "https://") || strings.HasPrefix(arg, "http://") {
		rc, _, err := blobstore.Open(ctx, arg)
		return rc, err
	}
	if split.IsSplit(arg) {
		var verify func(msg, sig []byte) error
		if !o.InsecureSkipSignature {
			if o.Allowed == nil {
				return nil, fmt.Errorf("%s: no allowed_signers file to check the part list against (pass --allowed-signers FILE): %w", arg, manifest.ErrVerify)
			}
			verify = func(msg, sig []byte) error {
				_, err := o.Allowed.Verify(msg, sig, manifest.Namespace, time.Now())
				return err
			}
		}
		rc, _, err := split.Open(ctx, arg, verify)
		return rc, err
	}
	return os.Open(arg)
}

// finishBundle reads what a verifying consumer left (tar padding), so a
// split bundle's last part and a blob's recorded hash are checked too, and
// closes the stream. When a split bundle failed verification, it reads on
// to the end of the part at fault so the error names that part.
func finishBundle(arg string, rc io.ReadCloser, err error) error {
	switch {
	case err == nil:
		_, err = io.Copy(io.Discard, rc)
	case errors.Is(err, manifest.ErrVerify) && split.IsSplit(arg):
		if _, perr := io.Copy(io.Discard, rc); perr != nil {
			err = fmt.Errorf("%w; within it: %v", perr, err)
		}
	}
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return err
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
// (permissions, a read-only file system): it creates and removes a probe
// file, so the error names dir rather than a temporary file in it.
func checkDir(verb, what, dir string) error {
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%s: %s %s does not exist", verb, what, dir)
	} else if !st.IsDir() {
		return fmt.Errorf("%s: %s %s is not a directory", verb, what, dir)
	}
	f, err := os.CreateTemp(dir, ".ccmirror-probe-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s: cannot write in %s %s: %v", verb, what, dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkBundleHead fails when path is not a file holding a ccmirror bundle's
// head (SHA256SUMS, signature, manifest.json), before anything is written.
func checkBundleHead(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
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
