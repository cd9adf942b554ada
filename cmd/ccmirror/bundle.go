package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
		return o, err
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
