package transport

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/manifest"
)

// headSize is how much of a stream checkHead looks at: one tar header.
const headSize = 512

// checkHead fails, with an error matching errclass.ErrVerify that says what
// the data is instead, unless head (the first bytes of a stream, up to
// headSize) starts like a ccmirror bundle: a tar header whose entry is
// SHA256SUMS. The full check of the head is manifest.NewReader's; this one
// only turns "bundle is truncated" for a JSON file into words.
func checkHead(head []byte) error {
	not := func(format string, a ...any) error {
		return fmt.Errorf("not a ccmirror bundle: %s: %w", fmt.Sprintf(format, a...), errclass.ErrVerify)
	}
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case len(head) == 0:
		return not("the file is empty")
	case isTarHeader(head):
		name := tarName(head)
		if name == manifest.SumsName {
			return nil
		}
		return not("a tar archive whose first entry is %q (a bundle starts with %s)", clip(name, 60), manifest.SumsName)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return not("gzip data (ccmirror bundles are plain tar)")
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN SSH SIGNATURE")):
		return not("an SSH signature (.sig)")
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return not("a PEM/OpenSSH key or certificate")
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['):
		if bytes.Contains(head, []byte(`"ccmirror.parts/`)) {
			return not("a split bundle's part list: name it as BUNDLE.parts")
		}
		return not("JSON (a request or index file?)")
	case isText(head):
		first, _, _ := strings.Cut(string(trimmed), "\n")
		return not("a text file starting %q", clip(strings.TrimSpace(first), 40))
	case len(head) < headSize:
		return not("only %d bytes, shorter than one tar header", len(head))
	}
	return not("unrecognised binary data, not a tar archive")
}

// isTarHeader reports whether b is a tar header with a valid checksum.
func isTarHeader(b []byte) bool {
	if len(b) < headSize {
		return false
	}
	field := strings.TrimRight(strings.TrimSpace(strings.Trim(string(b[148:156]), "\x00")), "\x00 ")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var sum int64
	for i := 0; i < headSize; i++ {
		if i >= 148 && i < 156 {
			sum += ' '
			continue
		}
		sum += int64(b[i])
	}
	return sum == want
}

// tarName is a tar header's entry name (ustar prefix included).
func tarName(b []byte) string {
	cstr := func(f []byte) string {
		if i := bytes.IndexByte(f, 0); i >= 0 {
			f = f[:i]
		}
		return string(f)
	}
	name := cstr(b[0:100])
	if string(b[257:262]) == "ustar" {
		if p := cstr(b[345:500]); p != "" {
			name = p + "/" + name
		}
	}
	return name
}

// isText reports whether b is printable UTF-8 text (a cut-off last rune
// allowed).
func isText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return len(b) < utf8.UTFMax
		}
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f {
			return false
		}
		b = b[n:]
	}
	return true
}

// clip shortens s to at most n runes, printable only.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
