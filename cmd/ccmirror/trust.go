package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/transport"
)

// insecureWarning is what --insecure-skip-signature prints, once, on stderr.
const insecureWarning = "WARNING: --insecure-skip-signature: the bundle's signature is NOT checked; anyone could have made it"

// trustFlags is the one home of the flags that decide whose bundles are
// trusted, and of their rule: --allowed-signers FILE is required unless
// --insecure-skip-signature, which warns once.
type trustFlags struct {
	AllowedSigners string
	Insecure       bool
}

// allowedSignersFlag is --allowed-signers bound to dest.
func allowedSignersFlag(dest *string) cli.Flag {
	return &cli.StringFlag{Name: "allowed-signers", EnvVars: []string{"CCMIRROR_ALLOWED_SIGNERS"}, Destination: dest,
		Usage: "OpenSSH allowed_signers `FILE` naming the keys whose bundles you trust"}
}

// flags returns --allowed-signers and --insecure-skip-signature bound to t;
// insecureUsage says what the latter does for the verb.
func (t *trustFlags) flags(insecureUsage string) []cli.Flag {
	return []cli.Flag{
		allowedSignersFlag(&t.AllowedSigners),
		&cli.BoolFlag{Name: "insecure-skip-signature", Usage: insecureUsage, Destination: &t.Insecure},
	}
}

// load applies the rule for verb and parses the allowed_signers file, so a
// wrong file fails before any work is done.
func (t *trustFlags) load(verb string, e *env) (staging.VerifyOptions, error) {
	if t.AllowedSigners == "" && !t.Insecure {
		return staging.VerifyOptions{}, usagef("%s: --allowed-signers FILE (or CCMIRROR_ALLOWED_SIGNERS) is required", verb)
	}
	o, err := loadTrust(t.AllowedSigners, t.Insecure)
	if err != nil {
		return o, err
	}
	if t.Insecure {
		fmt.Fprintln(e.stderr, insecureWarning)
	}
	return o, nil
}

// loadOptional is the rule of pull, which verifies what it downloads but
// may be told nothing to trust: without --allowed-signers only the hashes
// are checked, and pull's report says so.
func (t *trustFlags) loadOptional() (staging.VerifyOptions, error) {
	return loadTrust(t.AllowedSigners, t.AllowedSigners == "")
}

// loadTrust parses the allowed_signers file (when named) into verify
// options.
func loadTrust(path string, insecure bool) (staging.VerifyOptions, error) {
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

// partListCheck is how a split bundle's part list is checked under o.
func partListCheck(o staging.VerifyOptions) transport.Option {
	if o.InsecureSkipSignature {
		return transport.WithoutSignature()
	}
	return transport.WithPartListCheck(partListVerifier(o))
}

// partListVerifier checks a part list's signature against o.Allowed, or is
// nil when signatures are not checked.
func partListVerifier(o staging.VerifyOptions) func(msg, sig []byte) error {
	if o.InsecureSkipSignature || o.Allowed == nil {
		return nil
	}
	return func(msg, sig []byte) error {
		_, err := o.Allowed.Verify(msg, sig, manifest.Namespace, time.Now())
		return err
	}
}
