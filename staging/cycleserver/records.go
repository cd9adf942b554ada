// Package cycleserver reads the project records a CycleCloud server holds
// (`cycle_server execute 'select * from cloud.project'`), in CycleCloud's
// default `Key = value` format or its `-format json` output, derives the
// GitHub repository and tag each record's Url names, and orders project
// versions numerically. `ccmirror plan` uses it to find what the server wants.
package cycleserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ccmirror/ccmirror/manifest"
)

// Project is one cloud.project record as CycleCloud reports it, plus the
// GitHub repository and tag derived from its Url.
type Project struct {
	Name        string // Name attribute, e.g. "slurm"
	Version     string // Version attribute, e.g. "2.5.0"
	ProjectType string // ProjectType attribute, e.g. "scheduler"; "" when undefined
	URL         string // Url attribute, e.g. "https://github.com/Azure/cyclecloud-slurm/releases/2.5.0"
	AutoUpgrade bool   // AutoUpgrade attribute; false when absent or undefined

	Repo string // OWNER/REPO derived from URL; "" when URLProblem is set
	Tag  string // release tag derived from URL; "" when URLProblem is set

	// URLProblem says, in one line, why this record cannot be fetched: a
	// missing Name or Version, a name unusable as a folder name, or a Url that
	// is not a GitHub release URL (file://, a bare repository, empty). Repo
	// and Tag are never guessed; they are empty whenever URLProblem is set.
	URLProblem string
}

// Keys of a cloud.project record this package interprets (matched without
// regard to case, as CycleCloud's attribute names are). Other keys are
// ignored.
const (
	keyName        = "name"
	keyVersion     = "version"
	keyProjectType = "projecttype"
	keyURL         = "url"
	keyAutoUpgrade = "autoupgrade"
)

// field is one attribute value as read from either output format.
type field struct {
	text string // the value as a string: unquoted string, raw literal, "" for undefined/null
	// boolean is set when the value is a boolean literal (or a string
	// spelling one); ok reports whether it was.
	boolean, ok bool
}

// newProject builds a Project from a record's fields; where names the record
// in problems ("record at line 3", "record 2").
func newProject(fields map[string]field, where string) Project {
	p := Project{
		Name:        fields[keyName].text,
		Version:     fields[keyVersion].text,
		ProjectType: fields[keyProjectType].text,
		URL:         fields[keyURL].text,
	}
	if f := fields[keyAutoUpgrade]; f.ok {
		p.AutoUpgrade = f.boolean
	}
	switch {
	case p.Name == "":
		p.URLProblem = where + " has no Name"
	case p.Version == "":
		p.URLProblem = where + " has no Version"
	case !manifest.ValidName(p.Name):
		p.URLProblem = fmt.Sprintf("name %q is not usable as a folder name", p.Name)
	case !manifest.ValidName(p.Version):
		p.URLProblem = fmt.Sprintf("version %q is not usable as a folder name", p.Version)
	default:
		repo, tag, err := ParseReleaseURL(p.URL)
		if err != nil {
			p.URLProblem = err.Error()
		} else {
			p.Repo, p.Tag = repo, tag
		}
	}
	return p
}

var (
	ghOwner = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	ghRepo  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// ParseReleaseURL derives OWNER/REPO and the tag from a GitHub release URL
// of the forms https://github.com/OWNER/REPO/releases/TAG and
// https://github.com/OWNER/REPO/releases/tag/TAG (a trailing slash is
// tolerated). Any other form is an error saying what is wrong with it;
// nothing is guessed.
func ParseReleaseURL(raw string) (repo, tag string, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "", errors.New("no Url")
	}
	const want = "want https://github.com/OWNER/REPO/releases/TAG"
	u, perr := url.Parse(s)
	if perr != nil {
		return "", "", fmt.Errorf("Url %q is not a URL; %s", s, want)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", "", fmt.Errorf("Url %q is not a GitHub release URL; %s", s, want)
	}
	host := strings.ToLower(u.Hostname())
	if host != "github.com" && host != "www.github.com" || u.Port() != "" {
		return "", "", fmt.Errorf("Url %q is not on github.com; %s", s, want)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", "", fmt.Errorf("Url %q carries credentials, a query or a fragment; %s", s, want)
	}
	segs := strings.Split(strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/"), "/")
	if len(segs) < 2 || !ghOwner.MatchString(segs[0]) || !ghRepo.MatchString(segs[1]) ||
		segs[1] == "." || segs[1] == ".." {
		return "", "", fmt.Errorf("Url %q does not name a GitHub repository; %s", s, want)
	}
	repo = segs[0] + "/" + segs[1]
	rest := segs[2:]
	switch {
	case len(rest) == 0 || len(rest) == 1 && rest[0] == "":
		return "", "", fmt.Errorf("Url %q names a repository, not a release; %s", s, want)
	case rest[0] != "releases":
		return "", "", fmt.Errorf("Url %q is not a release URL; %s", s, want)
	case len(rest) == 2 && rest[1] == "tag":
		return "", "", fmt.Errorf("Url %q names no tag; %s", s, want)
	case len(rest) == 2 && rest[1] == "latest":
		return "", "", fmt.Errorf("Url %q names whichever release is latest, not a tag; %s", s, want)
	case len(rest) == 2:
		tag = rest[1]
	case len(rest) >= 3 && rest[1] == "tag":
		tag = strings.Join(rest[2:], "/")
	default:
		return "", "", fmt.Errorf("Url %q is not a release URL; %s", s, want)
	}
	if !manifest.ValidTag(tag) {
		return "", "", fmt.Errorf("Url %q: tag %q is not a usable tag name", s, tag)
	}
	return repo, tag, nil
}

// ParseRecords parses CycleCloud's default output of `cycle_server execute`:
// records of `Key = value` lines separated by one or more blank lines. Values
// may be quoted strings (with backslash escapes), bare literals (true, false,
// numbers, undefined), lists `{...}` or nested records `[...]`, which may
// span lines. Keys are matched without regard to case; unknown keys are
// ignored. CRLF line ends and a leading byte-order mark are tolerated. A line
// that is not `Key = value`, a key given twice in one record, or an
// unterminated value is an error naming the line. Empty output means no
// records.
func ParseRecords(b []byte) ([]Project, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	lines := strings.Split(string(b), "\n")
	var (
		out      []Project
		fields   map[string]field
		seen     map[string]int // lower-case key -> line it was given on
		recStart int
		// a value that spans lines
		contKey   string
		contLine  int
		contVal   strings.Builder
		contState valueScanner
	)
	flush := func() {
		if fields != nil {
			out = append(out, newProject(fields, fmt.Sprintf("record at line %d", recStart)))
		}
		fields, seen = nil, nil
	}
	set := func(key, raw string, line int) error {
		lk := strings.ToLower(key)
		if prev, dup := seen[lk]; dup {
			return fmt.Errorf("line %d: %s given twice in one record (first on line %d); records must be separated by a blank line", line, key, prev)
		}
		seen[lk] = line
		fields[lk] = literal(raw)
		return nil
	}
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if contKey != "" {
			contVal.WriteByte('\n')
			contVal.WriteString(line)
			if err := contState.feed(line); err != nil {
				return nil, fmt.Errorf("line %d: %s: %v", n, contKey, err)
			}
			if contState.done() {
				if err := set(contKey, strings.TrimSpace(contVal.String()), contLine); err != nil {
					return nil, err
				}
				contKey = ""
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 || !validKey(strings.TrimSpace(line[:eq])) {
			return nil, fmt.Errorf("line %d: not a `Key = value` line: %q", n, clip(line))
		}
		key, val := strings.TrimSpace(line[:eq]), strings.TrimSpace(line[eq+1:])
		if fields == nil {
			fields, seen, recStart = map[string]field{}, map[string]int{}, n
		}
		var sc valueScanner
		if err := sc.feed(val); err != nil {
			return nil, fmt.Errorf("line %d: %s: %v", n, key, err)
		}
		if !sc.done() {
			contKey, contLine, contState = key, n, sc
			contVal.Reset()
			contVal.WriteString(val)
			continue
		}
		if err := set(key, val, n); err != nil {
			return nil, err
		}
	}
	if contKey != "" {
		return nil, fmt.Errorf("line %d: %s: value never ends (unbalanced quote or bracket)", contLine, contKey)
	}
	flush()
	return out, nil
}

var keyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

func validKey(k string) bool { return len(k) <= 256 && keyRe.MatchString(k) }

// clip shortens s for an error message.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// valueScanner tracks quotes and bracket depth across the lines of a value.
type valueScanner struct {
	inQuote, esc bool
	depth        int
}

func (s *valueScanner) feed(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if s.inQuote {
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.inQuote = false
			}
			continue
		}
		switch c {
		case '"':
			s.inQuote = true
		case '{', '[', '(':
			s.depth++
		case '}', ']', ')':
			s.depth--
			if s.depth < 0 {
				return fmt.Errorf("unbalanced %q", c)
			}
		}
	}
	return nil
}

func (s *valueScanner) done() bool { return !s.inQuote && s.depth == 0 }

// literal interprets one raw value of the default format.
func literal(raw string) field {
	if strings.EqualFold(raw, "undefined") || raw == "" {
		return field{}
	}
	if s, ok := unquote(raw); ok {
		return boolField(s)
	}
	return boolField(raw)
}

// boolField wraps s, noting whether it spells a boolean.
func boolField(s string) field {
	f := field{text: s}
	switch strings.ToLower(s) {
	case "true":
		f.boolean, f.ok = true, true
	case "false":
		f.ok = true
	}
	return f
}

// unquote decodes a value that is exactly one double-quoted string. Escapes
// \" \\ \/ \' \n \t \r \b \f and \uXXXX are decoded; any other backslash is
// kept as written.
func unquote(raw string) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	var sb strings.Builder
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '"':
			if i != len(raw)-1 {
				return "", false // an expression such as "a" + "b"
			}
			return sb.String(), true
		case c == '\\' && i+1 < len(raw):
			i++
			switch e := raw[i]; e {
			case '"', '\\', '/', '\'':
				sb.WriteByte(e)
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'r':
				sb.WriteByte('\r')
			case 'b':
				sb.WriteByte('\b')
			case 'f':
				sb.WriteByte('\f')
			case 'u':
				if i+4 < len(raw) {
					if v, err := strconv.ParseUint(raw[i+1:i+5], 16, 32); err == nil {
						sb.WriteRune(rune(v))
						i += 4
						continue
					}
				}
				sb.WriteString(`\u`)
			default:
				sb.WriteByte('\\')
				sb.WriteByte(e)
			}
		default:
			sb.WriteByte(c)
		}
	}
	return "", false
}

// ParseJSON parses the output of `cycle_server execute -format json`: a JSON
// array of record objects (a single object is accepted as one record). Keys
// are matched without regard to case and unknown keys are ignored; strings,
// numbers, booleans and null are accepted for every interpreted key. Output
// that is not one JSON array or object is an error.
func ParseJSON(b []byte) ([]Project, error) {
	b = bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))
	if len(b) == 0 {
		return nil, errors.New("empty output")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return nil, errors.New("not JSON: trailing data after the JSON value")
	}
	var recs []any
	switch t := top.(type) {
	case []any:
		recs = t
	case map[string]any:
		recs = []any{t}
	default:
		return nil, errors.New("JSON output is neither an array of records nor a record")
	}
	out := make([]Project, 0, len(recs))
	for i, r := range recs {
		obj, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %d is not a JSON object", i+1)
		}
		fields := map[string]field{}
		seen := map[string]string{}
		for k, v := range obj {
			lk := strings.ToLower(k)
			if prev, dup := seen[lk]; dup {
				return nil, fmt.Errorf("record %d: key %s given twice (also as %s)", i+1, k, prev)
			}
			seen[lk] = k
			fields[lk] = jsonField(v)
		}
		out = append(out, newProject(fields, fmt.Sprintf("record %d", i+1)))
	}
	return out, nil
}

// jsonField converts one decoded JSON value.
func jsonField(v any) field {
	switch t := v.(type) {
	case nil:
		return field{}
	case string:
		return boolField(t)
	case bool:
		return field{text: strconv.FormatBool(t), boolean: t, ok: true}
	case json.Number:
		return field{text: t.String()}
	default:
		b, err := json.Marshal(t)
		if err != nil {
			return field{}
		}
		return field{text: string(b)}
	}
}
