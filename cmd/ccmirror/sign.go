package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
)

// signFlags is the one home of --sign-key and --unsigned, and of their
// rule: a bundle or part list is signed unless --unsigned says otherwise.
type signFlags struct {
	Key      string
	Unsigned bool
}

// signKeyFlag is --sign-key bound to dest.
func signKeyFlag(dest *string, usage string) cli.Flag {
	return &cli.StringFlag{Name: "sign-key", EnvVars: []string{"CCMIRROR_SIGN_KEY"}, Destination: dest, Usage: usage}
}

// flags returns --sign-key and --unsigned bound to s.
func (s *signFlags) flags(keyUsage, unsignedUsage string) []cli.Flag {
	return []cli.Flag{
		signKeyFlag(&s.Key, keyUsage),
		&cli.BoolFlag{Name: "unsigned", Destination: &s.Unsigned, Usage: unsignedUsage},
	}
}

// load opens the signing key, or returns nil for --unsigned.
func (s *signFlags) load(verb string) (manifest.Signer, error) {
	return loadSigner(s.Key, s.Unsigned, verb)
}

// loadSigner opens the signing key at path, or returns nil when unsigned.
// A missing key without --unsigned is a usage error: a bundle is signed
// unless asked not to.
func loadSigner(path string, unsigned bool, verb string) (manifest.Signer, error) {
	if unsigned {
		return nil, nil
	}
	if path == "" {
		return nil, usagef("%s: --sign-key FILE (or CCMIRROR_SIGN_KEY) is required; pass --unsigned to write an unsigned bundle", verb)
	}
	s, err := trust.LoadSigner(path, promptPassphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: sign key: %w", verb, err)
	}
	return s, nil
}

// promptPassphrase asks for a key passphrase on the controlling terminal.
func promptPassphrase(keyPath string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%s is encrypted and there is no terminal to ask for its passphrase; set CCMIRROR_KEY_PASSPHRASE", keyPath)
	}
	defer tty.Close()
	fmt.Fprintf(tty, "Passphrase for %s: ", keyPath)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return p, err
}
