package trust

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/manifest"
)

// maxLine bounds one allowed_signers line (an RSA-16384 key is about 3 KiB).
const maxLine = 64 << 10

// AllowedSigners is a parsed OpenSSH allowed_signers file: the keys trusted
// to sign bundles, each for some principals, namespaces and time window.
// Create it with ParseAllowedSigners or LoadAllowedSigners.
type AllowedSigners struct {
	name     string
	entries  []signerEntry
	warnings []string
}

// Warnings lists the lines ParseAllowedSigners skipped, as ssh-keygen does:
// cert-authority lines and lines with options it does not know, each as
// "FILE:LINE: skipped: why".
func (a *AllowedSigners) Warnings() []string {
	if a == nil {
		return nil
	}
	return a.warnings
}

// skipLine is a line OpenSSH would skip with a message rather than refuse
// the whole file for.
type skipLine struct{ reason string }

func (s *skipLine) Error() string { return s.reason }

// signerEntry is one line of an allowed_signers file.
type signerEntry struct {
	line       int
	principals string // the pattern-list as written
	key        ssh.PublicKey
	keyBlob    []byte
	namespaces *string   // nil when the line has no namespaces= option
	after      time.Time // zero when unset
	before     time.Time // zero when unset
}

// where names the line for messages: "FILE:LINE".
func (a *AllowedSigners) where(e *signerEntry) string {
	return fmt.Sprintf("%s:%d", a.name, e.line)
}

// Identity names who made a signature Verify accepted.
type Identity struct {
	// Principal is the first principal pattern of the allowed_signers line
	// that accepted the key (negated patterns skipped).
	Principal string
	// Fingerprint is the signing key's "SHA256:..." fingerprint.
	Fingerprint string
	// KeyType is the signing key's type, e.g. "ssh-ed25519".
	KeyType string
}

// LoadAllowedSigners reads and parses the allowed_signers file at path.
func LoadAllowedSigners(path string) (*AllowedSigners, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("allowed_signers: %w", err)
	}
	defer f.Close()
	return ParseAllowedSigners(f, path)
}

// ParseAllowedSigners parses an OpenSSH allowed_signers file (see
// ssh-keygen(1), ALLOWED SIGNERS): per line a principals pattern-list (comma
// separated, "*" and "?" wildcards, "!" negation, optionally double-quoted),
// optional comma-separated options (namespaces="...", valid-after="...",
// valid-before="...", case-insensitive), the key type, the base64 key and an
// optional comment. Blank lines and lines starting with "#" are skipped.
// As ssh-keygen does, a cert-authority line (ccmirror trusts plain keys
// only) and a line with an unknown option are skipped with a warning
// (Warnings) rather than refusing the file; any other broken line is an
// error. name is the file name used in messages ("FILE:LINE: ...").
func ParseAllowedSigners(r io.Reader, name string) (*AllowedSigners, error) {
	a := &AllowedSigners{name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		e, err := parseSignerLine(sc.Text())
		var skip *skipLine
		if errors.As(err, &skip) {
			a.warnings = append(a.warnings, fmt.Sprintf("%s:%d: skipped: %s", name, n, skip.reason))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if e == nil {
			continue
		}
		e.line = n
		a.entries = append(a.entries, *e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, n+1, maxLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

// isSpace is OpenSSH's WHITESPACE set.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func trimSpaceLeft(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

// parseSignerLine parses one line; it returns nil, nil for blank lines and
// comments.
func parseSignerLine(line string) (*signerEntry, error) {
	s := trimSpaceLeft(line)
	if s == "" || s[0] == '#' {
		return nil, nil
	}
	principals, s, err := principalsField(s)
	if err != nil {
		return nil, err
	}
	if principals == "" {
		return nil, errors.New("empty principals")
	}
	if s == "" {
		return nil, errors.New("missing key after the principals")
	}
	e := &signerEntry{principals: principals}
	tok, _ := field(s)
	if !knownKeyType(tok) {
		if looksLikeKeyType(tok) {
			return nil, fmt.Errorf("unsupported key type %q", tok)
		}
		opts, rest, err := optionsField(s)
		if err != nil {
			return nil, err
		}
		if err := e.parseOptions(opts); err != nil {
			return nil, err
		}
		s = trimSpaceLeft(rest)
		if s == "" {
			return nil, errors.New("missing key after the options")
		}
	}
	if err := e.parseKey(s); err != nil {
		return nil, err
	}
	return e, nil
}

// principalsField splits off the principals field the way OpenSSH's
// strdelimw does: up to white space, where a double quote starts a quoted
// part that ends the field at the closing quote.
func principalsField(s string) (tok, rest string, err error) {
	i := 0
	for i < len(s) && !isSpace(s[i]) && s[i] != '"' {
		i++
	}
	if i < len(s) && s[i] == '"' {
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			return "", "", errors.New("principals: missing closing double quote")
		}
		return s[:i] + s[i+1:i+1+j], trimSpaceLeft(s[i+2+j:]), nil
	}
	return s[:i], trimSpaceLeft(s[i:]), nil
}

// field splits off the next white-space separated token.
func field(s string) (tok, rest string) {
	i := 0
	for i < len(s) && !isSpace(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// optionsField splits off the options field: up to white space outside
// double quotes, where \" does not end a quote.
func optionsField(s string) (opts, rest string, err error) {
	quoted := false
	i := 0
	for ; i < len(s) && (quoted || !isSpace(s[i])); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == '"' {
			i++
		} else if s[i] == '"' {
			quoted = !quoted
		}
	}
	if quoted {
		return "", "", errors.New("options: missing closing double quote")
	}
	return s[:i], s[i:], nil
}

var keyTypes = map[string]bool{
	ssh.KeyAlgoED25519: true, ssh.KeyAlgoRSA: true, ssh.KeyAlgoDSA: true,
	ssh.KeyAlgoECDSA256: true, ssh.KeyAlgoECDSA384: true, ssh.KeyAlgoECDSA521: true,
	ssh.KeyAlgoSKED25519: true, ssh.KeyAlgoSKECDSA256: true,
	ssh.CertAlgoED25519v01: true, ssh.CertAlgoRSAv01: true, ssh.CertAlgoDSAv01: true,
	ssh.CertAlgoECDSA256v01: true, ssh.CertAlgoECDSA384v01: true, ssh.CertAlgoECDSA521v01: true,
	ssh.CertAlgoSKED25519v01: true, ssh.CertAlgoSKECDSA256v01: true,
}

func knownKeyType(s string) bool { return keyTypes[s] }

// looksLikeKeyType tells a misspelt or unknown key type from an options
// field, for a clearer message than "unknown option".
func looksLikeKeyType(s string) bool {
	if strings.ContainsAny(s, "=\",") {
		return false
	}
	for _, p := range []string{"ssh-", "ecdsa-", "sk-", "rsa-"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// parseKey parses "TYPE BASE64 [COMMENT]".
func (e *signerEntry) parseKey(s string) error {
	typ, rest := field(s)
	if !knownKeyType(typ) {
		return fmt.Errorf("unknown key type %q", typ)
	}
	b64, _ := field(trimSpaceLeft(rest))
	if b64 == "" {
		return fmt.Errorf("missing base64 key after %s", typ)
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("invalid %s key: bad base64: %w", typ, err)
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return fmt.Errorf("invalid %s key: %w", typ, err)
	}
	if pub.Type() != typ {
		return fmt.Errorf("key type %s does not match the key, which is %s", typ, pub.Type())
	}
	e.key, e.keyBlob = pub, pub.Marshal()
	return nil
}

// parseOptions parses the options field as OpenSSH's sshsigopt_parse does.
func (e *signerEntry) parseOptions(opts string) error {
	for {
		name, value, hasValue, rest, err := nextOption(opts)
		if err != nil {
			return err
		}
		switch strings.ToLower(name) {
		case "cert-authority":
			return &skipLine{"cert-authority is not supported: ccmirror trusts plain keys only; list the signing key itself"}
		case "namespaces":
			if !hasValue {
				return errors.New(`namespaces needs a value: namespaces="ccmirror"`)
			}
			if e.namespaces != nil {
				return errors.New(`multiple "namespaces" options`)
			}
			e.namespaces = &value
		case "valid-after", "valid-before":
			lname := strings.ToLower(name)
			if !hasValue {
				return fmt.Errorf(`%s needs a value: %s="YYYYMMDD[HHMM[SS]][Z]"`, lname, lname)
			}
			t, err := parseSignerTime(value)
			if err != nil {
				return fmt.Errorf("invalid %s time %q: %w", lname, value, err)
			}
			dst := &e.after
			if lname == "valid-before" {
				dst = &e.before
			}
			if !dst.IsZero() {
				return fmt.Errorf("multiple %q options", lname)
			}
			*dst = t
		default:
			return &skipLine{fmt.Sprintf("unknown option %q (allowed_signers knows namespaces, valid-after, valid-before)", name)}
		}
		if rest == "" {
			break
		}
		opts = rest
	}
	if !e.after.IsZero() && !e.before.IsZero() && !e.before.After(e.after) {
		return errors.New("valid-before is not after valid-after")
	}
	return nil
}

// nextOption reads one option, NAME or NAME="VALUE", and the text after its
// separating comma. Values must be double-quoted, as OpenSSH requires.
func nextOption(s string) (name, value string, hasValue bool, rest string, err error) {
	i := 0
	for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != '"' {
		i++
	}
	name = s[:i]
	if name == "" {
		return "", "", false, "", errors.New("options: empty option")
	}
	if i < len(s) && s[i] == '"' {
		return "", "", false, "", fmt.Errorf("options: unexpected double quote in %q", s)
	}
	if i < len(s) && s[i] == '=' {
		hasValue = true
		i++
		if i >= len(s) || s[i] != '"' {
			return "", "", false, "", fmt.Errorf(`option %s: the value must be in double quotes, e.g. %s="..."`, name, name)
		}
		i++
		var b strings.Builder
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' && i+1 < len(s) && s[i+1] == '"' {
				i++
			}
			b.WriteByte(s[i])
			i++
		}
		if i >= len(s) {
			return "", "", false, "", fmt.Errorf("option %s: missing closing double quote", name)
		}
		i++
		value = b.String()
	}
	if i == len(s) {
		return name, value, hasValue, "", nil
	}
	if s[i] != ',' {
		return "", "", false, "", fmt.Errorf("option %s: unexpected %q after it (separate options with commas, no spaces)", name, s[i:])
	}
	if i+1 == len(s) {
		return "", "", false, "", errors.New("options: unexpected end after a comma")
	}
	return name, value, hasValue, s[i+1:], nil
}

// parseSignerTime parses YYYYMMDD[Z], YYYYMMDDHHMM[Z] or YYYYMMDDHHMMSS[Z]
// (or with a "UTC" suffix), in local time unless marked UTC, as OpenSSH's
// parse_absolute_time does. Impossible dates are errors.
func parseSignerTime(s string) (time.Time, error) {
	loc := time.Local
	switch {
	case len(s) > 1 && (s[len(s)-1] == 'Z' || s[len(s)-1] == 'z'):
		s, loc = s[:len(s)-1], time.UTC
	case len(s) > 3 && strings.EqualFold(s[len(s)-3:], "UTC"):
		s, loc = s[:len(s)-3], time.UTC
	}
	if len(s) != 8 && len(s) != 12 && len(s) != 14 {
		return time.Time{}, errors.New("want YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, optionally ending in Z for UTC")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, errors.New("want digits only, optionally ending in Z for UTC")
		}
	}
	num := func(i, j int) int {
		if j > len(s) {
			return 0
		}
		n, _ := strconv.Atoi(s[i:j])
		return n
	}
	y, mo, d, h, mi, sec := num(0, 4), num(4, 6), num(6, 8), num(8, 10), num(10, 12), num(12, 14)
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, loc)
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d || t.Hour() != h || t.Minute() != mi || t.Second() != sec {
		return time.Time{}, errors.New("no such date or time")
	}
	if t.Unix() <= 0 {
		return time.Time{}, errors.New("time before 1970")
	}
	return t, nil
}

// matchPattern reports whether s matches an OpenSSH pattern with "*" (any
// run of bytes) and "?" (any one byte).
func matchPattern(s, pattern string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			si++
			pi++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// matchPatternList reports whether s matches a comma-separated pattern-list:
// some pattern matches and no "!"-negated pattern does (OpenSSH's
// match_pattern_list).
func matchPatternList(s, list string) bool {
	positive := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if matchPattern(s, p) {
			if neg {
				return false
			}
			positive = true
		}
	}
	return positive
}

// hasPositive reports whether a principals pattern-list has a pattern that
// is not negated: one with only "!" patterns matches no one in OpenSSH's
// match_pattern_list.
func hasPositive(list string) bool {
	for _, p := range strings.Split(list, ",") {
		if !strings.HasPrefix(p, "!") {
			return true
		}
	}
	return false
}

// firstPrincipal is the first non-negated pattern of the principals list.
func firstPrincipal(list string) string {
	for _, p := range strings.Split(list, ",") {
		if p != "" && !strings.HasPrefix(p, "!") {
			return p
		}
	}
	return list
}

// Verify checks armoredSig, an "ssh-keygen -Y sign" signature, over msg for
// namespace at time t (the zero time means now) and returns who signed. The
// signature's namespace must equal namespace, its key must be listed, and a
// line listing it must allow namespace and be valid at t (valid-after <= t
// <= valid-before, as OpenSSH checks). Every failure wraps manifest.ErrVerify
// and says why: unknown key, namespace not allowed, not yet valid, expired,
// wrong namespace in the signature, bad signature.
func (a *AllowedSigners) Verify(msg, armoredSig []byte, namespace string, t time.Time) (*Identity, error) {
	if a == nil {
		return nil, fmt.Errorf("signature: no allowed_signers given: %w", manifest.ErrVerify)
	}
	if namespace == "" {
		return nil, fmt.Errorf("signature: empty namespace: %w", manifest.ErrVerify)
	}
	if t.IsZero() {
		t = time.Now()
	}
	sig, err := unarmor(armoredSig)
	if err != nil {
		return nil, fmt.Errorf("signature: %v: %w", err, manifest.ErrVerify)
	}
	if sig.Namespace != namespace {
		return nil, fmt.Errorf("signature: made for namespace %q, want %q: %w", sig.Namespace, namespace, manifest.ErrVerify)
	}
	fp := Fingerprint(sig.PublicKey)
	blob := sig.PublicKey.Marshal()
	var reasons []string
	var match *signerEntry
	for i := range a.entries {
		e := &a.entries[i]
		if !bytes.Equal(e.keyBlob, blob) {
			continue
		}
		if !hasPositive(e.principals) {
			reasons = append(reasons, fmt.Sprintf("principals %q of this key are all negated, so the line matches no one (%s)", e.principals, a.where(e)))
			continue
		}
		if e.namespaces != nil && !matchPatternList(namespace, *e.namespaces) {
			reasons = append(reasons, fmt.Sprintf("namespace %q not allowed for this key (namespaces=%q at %s)", namespace, *e.namespaces, a.where(e)))
			continue
		}
		if !e.after.IsZero() && t.Unix() < e.after.Unix() {
			reasons = append(reasons, fmt.Sprintf("key %s is not valid before %s (valid-after at %s)", fp, formatTime(e.after), a.where(e)))
			continue
		}
		if !e.before.IsZero() && t.Unix() > e.before.Unix() {
			reasons = append(reasons, fmt.Sprintf("key %s expired: not valid after %s (valid-before at %s)", fp, formatTime(e.before), a.where(e)))
			continue
		}
		match = e
		break
	}
	if match == nil {
		if len(reasons) > 0 {
			return nil, fmt.Errorf("signature: %s: %w", strings.Join(reasons, "; "), manifest.ErrVerify)
		}
		if cert, ok := sig.PublicKey.(*ssh.Certificate); ok {
			return nil, fmt.Errorf("signature: signed with a certificate (CA %s), and certificates are not supported; allowed_signers %s must list the key itself: %w",
				Fingerprint(cert.SignatureKey), a.name, manifest.ErrVerify)
		}
		extra := ""
		if len(a.entries) == 0 {
			extra = " (the file lists no keys)"
		}
		return nil, fmt.Errorf("signature: signed by %s (%s) which is not in allowed_signers %s%s: %w",
			fp, sig.PublicKey.Type(), a.name, extra, manifest.ErrVerify)
	}
	if err := sshsig.Verify(bytes.NewReader(msg), sig, match.key, sig.HashAlgorithm, namespace); err != nil {
		return nil, fmt.Errorf("signature: bad signature by %s (%s): the signed content differs or the signature is corrupt: %v: %w",
			fp, a.where(match), err, manifest.ErrVerify)
	}
	return &Identity{
		Principal:   firstPrincipal(match.principals),
		Fingerprint: fp,
		KeyType:     sig.PublicKey.Type(),
	}, nil
}
