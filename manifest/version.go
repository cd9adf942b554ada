package manifest

import (
	"regexp"
	"strings"
)

// This file is the one home of version order and tag rules: status, plan,
// request files, cloud.project records and release selection all use it.

// versionTagRe is a release tag that names a version: an optional "v",
// digits with at least one dot, and an optional suffix ("2.0.25", "v1.2.0",
// "4.0.0-rc1"). Dated tags such as "2023-03-29-bins" are not versions.
var versionTagRe = regexp.MustCompile(`^[vV]?[0-9]+(\.[0-9]+)+([-+._~]?[0-9A-Za-z][0-9A-Za-z.+_~-]*)?$`)

// plainVersionRe is a version tag without a suffix.
var plainVersionRe = regexp.MustCompile(`^[vV]?[0-9]+(\.[0-9]+)+$`)

// IsVersionTag reports whether a release tag names a version (see
// versionTagRe), and whether it is a plain one, without a suffix. Release
// selection ("latest", "newest:N") considers only version tags and prefers
// plain ones.
func IsVersionTag(tag string) (ok, plain bool) {
	if len(tag) > 128 || !versionTagRe.MatchString(tag) {
		return false, false
	}
	return true, plainVersionRe.MatchString(tag)
}

// ValidTag reports whether t is usable as a git tag name (git
// check-ref-format rules, simplified): printable, no spaces or ~^:?*[\,
// no "..", "//" or "@{", not starting with "-" or "/", not ending with "/",
// "." or ".lock".
func ValidTag(t string) bool {
	if t == "" || len(t) > 255 || strings.Contains(t, "..") || strings.HasPrefix(t, "-") ||
		strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/") || strings.HasSuffix(t, ".lock") ||
		strings.HasSuffix(t, ".") || strings.Contains(t, "//") || strings.Contains(t, "@{") {
		return false
	}
	for _, r := range t {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("~^:?*[\\", r) {
			return false
		}
	}
	return true
}

// CompareVersions orders two project versions the way a person would:
// numerically per dot-separated component (2.10.0 > 2.9.1, 3.0.12 > 3.0.9),
// never as plain strings. A leading "v" before a digit and "+build" metadata
// are ignored, and missing components count as 0 (2.5 == 2.5.0). A
// pre-release, written after "-" (1.0.0-rc1) or as letters after a
// component's number (1.0.0rc1), sorts before the release; pre-release
// identifiers compare numerically where numeric (rc2 < rc10). It returns -1
// when a < b, 0 when they are equal, +1 when a > b.
func CompareVersions(a, b string) int {
	va, vb := parseVersion(a), parseVersion(b)
	n := max(len(va.main), len(vb.main))
	zero := component{numeric: true, num: "0"}
	for i := range n {
		ca, cb := zero, zero
		if i < len(va.main) {
			ca = va.main[i]
		}
		if i < len(vb.main) {
			cb = vb.main[i]
		}
		if c := compareComponent(ca, cb); c != 0 {
			return c
		}
	}
	switch {
	case !va.hasPre && !vb.hasPre:
		return 0
	case !va.hasPre:
		return 1
	case !vb.hasPre:
		return -1
	}
	return comparePre(va.pre, vb.pre)
}

type version struct {
	main   []component
	hasPre bool
	pre    []string
}

// component is one dot-separated part of the main version: a number with an
// optional suffix ("0rc1"), or text without a leading number.
type component struct {
	numeric bool
	num     string // digits without leading zeros ("0" for zero)
	suffix  string // text after the number, or the whole text when !numeric
}

func parseVersion(s string) version {
	s = strings.TrimSpace(s)
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && isDigit(s[1]) {
		s = s[1:]
	}
	s, _, _ = strings.Cut(s, "+")
	var v version
	main, pre, hasPre := strings.Cut(s, "-")
	if hasPre {
		v.hasPre = true
		v.pre = strings.Split(pre, ".")
	}
	for _, part := range strings.Split(main, ".") {
		d := 0
		for d < len(part) && isDigit(part[d]) {
			d++
		}
		if d == 0 {
			v.main = append(v.main, component{suffix: part})
			continue
		}
		v.main = append(v.main, component{numeric: true, num: trimZeros(part[:d]), suffix: part[d:]})
	}
	return v
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func trimZeros(d string) string {
	d = strings.TrimLeft(d, "0")
	if d == "" {
		return "0"
	}
	return d
}

// compareNum compares two digit strings without leading zeros.
func compareNum(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compareComponent: text-only components sort before numeric ones; numbers
// compare numerically; a number without suffix is newer than the same number
// with one (0 > 0rc1).
func compareComponent(a, b component) int {
	if a.numeric != b.numeric {
		if a.numeric {
			return 1
		}
		return -1
	}
	if a.numeric {
		if c := compareNum(a.num, b.num); c != 0 {
			return c
		}
		if (a.suffix == "") != (b.suffix == "") {
			if a.suffix == "" {
				return 1
			}
			return -1
		}
	}
	return compareNatural(a.suffix, b.suffix)
}

// comparePre compares pre-release identifiers: numeric ones numerically and
// before textual ones, textual ones naturally; a shorter list that is a
// prefix of a longer one sorts first.
func comparePre(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		na, nb := allDigits(a[i]), allDigits(b[i])
		var c int
		switch {
		case na && nb:
			c = compareNum(trimZeros(a[i]), trimZeros(b[i]))
		case na:
			c = -1
		case nb:
			c = 1
		default:
			c = compareNatural(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// compareNatural compares text with embedded numbers: runs of digits
// numerically (and before text at the same position), other runs bytewise.
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		ca, ra := chunk(a)
		cb, rb := chunk(b)
		da, db := isDigit(ca[0]), isDigit(cb[0])
		var c int
		switch {
		case da && db:
			c = compareNum(trimZeros(ca), trimZeros(cb))
		case da:
			c = -1
		case db:
			c = 1
		default:
			c = strings.Compare(ca, cb)
		}
		if c != 0 {
			return c
		}
		a, b = ra, rb
	}
	switch {
	case a == "" && b != "":
		return -1
	case a != "" && b == "":
		return 1
	}
	return 0
}

// chunk splits off the leading run of digits or of non-digits of a non-empty s.
func chunk(s string) (head, rest string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}
