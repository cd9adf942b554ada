package manifest

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// Sum is one line of SHA256SUMS: a bundle path and its lower-case hex
// SHA-256.
type Sum struct {
	Path, SHA256 string
}

// maxPathLen bounds a bundle path; GNU tar and Linux handle 4096.
const maxPathLen = 4096

// FormatSums renders sums exactly as coreutils sha256sum prints them:
// "<64 lower-case hex>  <path>\n" per file, sorted by path in byte order
// (LC_ALL=C sort). Like sha256sum, a path holding a backslash, newline or
// carriage return is escaped and its line starts with "\"; ParseSums rejects
// such lines because no valid bundle path contains those characters.
func FormatSums(sums []Sum) []byte {
	s := slices.Clone(sums)
	slices.SortFunc(s, func(a, b Sum) int { return strings.Compare(a.Path, b.Path) })
	var b bytes.Buffer
	for _, x := range s {
		name := x.Path
		if strings.ContainsAny(name, "\\\n\r") {
			b.WriteByte('\\')
			name = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace(name)
		}
		b.WriteString(x.SHA256)
		b.WriteString("  ")
		b.WriteString(name)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseSums parses SHA256SUMS strictly: only the exact bytes FormatSums
// produces for safe paths are accepted (text-mode lines, lower-case hex, two
// spaces, every line newline-terminated, paths sorted and unique, no
// absolute, ".." or unclean paths). Errors name the line and wrap ErrVerify.
func ParseSums(b []byte) ([]Sum, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: empty: %w", SumsName, ErrVerify)
	}
	if b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%s: last line has no newline: %w", SumsName, ErrVerify)
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	out := make([]Sum, 0, len(lines))
	for i, line := range lines {
		n := i + 1
		if strings.HasPrefix(line, `\`) {
			return nil, fmt.Errorf("%s:%d: escaped file name: %w", SumsName, n, ErrVerify)
		}
		if len(line) < 64+2+1 || line[64:66] != "  " {
			return nil, fmt.Errorf("%s:%d: want \"<sha256>  <path>\", got %q: %w", SumsName, n, clip(line), ErrVerify)
		}
		sum, p := line[:64], line[66:]
		if !ValidHash(sum) {
			return nil, fmt.Errorf("%s:%d: %q is not a lower-case hex SHA-256: %w", SumsName, n, sum, ErrVerify)
		}
		if reason := pathProblem(p); reason != "" {
			return nil, fmt.Errorf("%s:%d: path %q: %s: %w", SumsName, n, clip(p), reason, ErrVerify)
		}
		if len(out) > 0 {
			switch prev := out[len(out)-1].Path; {
			case p == prev:
				return nil, fmt.Errorf("%s:%d: %s listed twice: %w", SumsName, n, p, ErrVerify)
			case p < prev:
				return nil, fmt.Errorf("%s:%d: %s is not sorted after %s: %w", SumsName, n, p, prev, ErrVerify)
			}
		}
		out = append(out, Sum{Path: p, SHA256: sum})
	}
	return out, nil
}

// pathProblem says why p is not a safe bundle path, or returns "". A safe
// path is relative, clean, at most 4096 bytes of valid UTF-8 without
// control characters or backslashes, and has no "." or ".." element.
func pathProblem(p string) string {
	switch {
	case p == "":
		return "empty path"
	case len(p) > maxPathLen:
		return "path longer than 4096 bytes"
	case strings.HasPrefix(p, "/"):
		return "absolute path"
	case !utf8.ValidString(p):
		return "not valid UTF-8"
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		return "control character or backslash in path"
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "path leaves the bundle (..)"
		}
	}
	if path.Clean(p) != p {
		return "not a clean path (empty or . element, or trailing /)"
	}
	return ""
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
