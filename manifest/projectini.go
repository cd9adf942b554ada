package manifest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ProjectINI is what ccmirror needs from a CycleCloud project's project.ini:
// the [project] identity, every blob it names and its spec sections.
type ProjectINI struct {
	Name, Version, Type, Label string
	// AutoUpgrade is the [project] autoupgrade flag; nil when absent.
	AutoUpgrade *bool
	// Blobs is every Files entry of every [blobs] / [blobs X] section, in
	// order of appearance, trimmed and deduplicated. An entry may be a
	// relative path under the project's blobs/ folder.
	Blobs []string
	// BlobSections maps each blob section name ("blobs", "blobs hpcpack")
	// to its own deduplicated Files entries.
	BlobSections map[string][]string
	// Specs names the [spec X] sections in order of appearance.
	Specs []string
}

// maxINILine bounds one project.ini line; real files stay under 4 KiB.
const maxINILine = 1 << 20

type iniSection int

const (
	secNone    iniSection = iota // before the first header
	secProject                   // [project]
	secBlobs                     // [blobs] or [blobs NAME]
	secOther                     // [spec X], [config X], anything else: tolerated, not interpreted
)

// ParseProjectINI reads a CycleCloud project.ini. name is used in error
// messages ("slurm/project.ini:12: ..."). It interprets [project] and the
// blob sections strictly and tolerates everything else, including
// CycleCloud's own syntax in [config ...] sections (":=", indented
// "[[[[list ...]]]]" sub-sections). Keys are case-insensitive; "=" and ":="
// both separate key and value. An indented line without "=" continues the
// previous value. A missing [project] name or version is an error; a blob
// entry that is absolute, contains "..", or is not a plain relative path is
// an error wrapping ErrVerify, as is an unsafe project name or version.
func ParseProjectINI(r io.Reader, name string) (*ProjectINI, error) {
	p := &ProjectINI{BlobSections: map[string][]string{}}
	var (
		sec        = secNone
		secName    string
		nested     bool   // inside a [[...]] sub-section of the current section
		lastKey    string // key a continuation line extends; "" when none
		sawProject bool
		keyLine    = map[string]int{} // [project] key -> line it was set on
		projVal    = map[string]string{}
		seenBlob   = map[string]bool{}
		seenInSec  = map[string]map[string]bool{}
		seenSpec   = map[string]bool{}
	)
	addBlobs := func(value string, line int) error {
		for _, e := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == '\n' }) {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if reason := blobEntryProblem(e); reason != "" {
				return fmt.Errorf("%s:%d: blob %q: %s: %w", name, line, e, reason, ErrVerify)
			}
			if !seenInSec[secName][e] {
				seenInSec[secName][e] = true
				p.BlobSections[secName] = append(p.BlobSections[secName], e)
			}
			if !seenBlob[e] {
				seenBlob[e] = true
				p.Blobs = append(p.Blobs, e)
			}
		}
		return nil
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxINILine)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		if lineNo == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := strings.TrimSpace(raw)
		indented := raw != "" && (raw[0] == ' ' || raw[0] == '\t')
		switch {
		case line == "":
			lastKey = ""
			continue
		case line[0] == '#' || line[0] == ';':
			continue
		case strings.HasPrefix(line, "[["):
			// CycleCloud sub-section ("[[[[list Config.Entries]]]]"): its
			// keys belong to the nested object, not to this section.
			nested, lastKey = true, ""
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: malformed section header %q", name, lineNo, line)
			}
			fields := strings.Fields(line[1 : len(line)-1])
			if len(fields) == 0 {
				return nil, fmt.Errorf("%s:%d: empty section header", name, lineNo)
			}
			nested, lastKey = false, ""
			switch kind := strings.ToLower(fields[0]); {
			case kind == "project" && len(fields) == 1:
				sec, sawProject = secProject, true
			case kind == "blobs":
				sec, secName = secBlobs, strings.Join(fields, " ")
				if seenInSec[secName] == nil {
					seenInSec[secName] = map[string]bool{}
					p.BlobSections[secName] = []string{}
				}
			case kind == "spec" && len(fields) > 1:
				sec = secOther
				spec := strings.Join(fields[1:], " ")
				if !seenSpec[spec] {
					seenSpec[spec] = true
					p.Specs = append(p.Specs, spec)
				}
			default:
				sec = secOther
			}
			continue
		}
		if sec == secOther || nested {
			continue
		}
		if sec == secNone {
			return nil, fmt.Errorf("%s:%d: %q before any [section]", name, lineNo, line)
		}
		if indented && lastKey != "" && !strings.Contains(line, "=") {
			// Continuation of the previous value (Python ConfigParser style).
			switch {
			case sec == secBlobs && lastKey == "files":
				if err := addBlobs(line, lineNo); err != nil {
					return nil, err
				}
			case sec == secProject && keyLine[lastKey] != 0:
				projVal[lastKey] += " " + line
			}
			continue
		}
		key, value, ok := splitINIKey(line)
		if !ok {
			return nil, fmt.Errorf("%s:%d: expected \"key = value\", got %q", name, lineNo, line)
		}
		key = strings.ToLower(key)
		lastKey = key
		switch sec {
		case secBlobs:
			if key == "files" {
				if err := addBlobs(value, lineNo); err != nil {
					return nil, err
				}
			}
		case secProject:
			switch key {
			case "name", "version", "type", "label", "autoupgrade":
				if first, dup := keyLine[key]; dup {
					return nil, fmt.Errorf("%s:%d: [project] %s set twice (first on line %d)", name, lineNo, key, first)
				}
				keyLine[key] = lineNo
				projVal[key] = value
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, lineNo+1, maxINILine)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}

	if !sawProject {
		return nil, fmt.Errorf("%s: no [project] section", name)
	}
	for _, k := range []string{"name", "version"} {
		v := projVal[k]
		if v == "" {
			return nil, fmt.Errorf("%s: [project] has no %s", name, k)
		}
		if !ValidName(v) {
			return nil, fmt.Errorf("%s:%d: [project] %s %q is not a plain file name: %w", name, keyLine[k], k, v, ErrVerify)
		}
	}
	p.Name, p.Version = projVal["name"], projVal["version"]
	p.Type, p.Label = projVal["type"], projVal["label"]
	if line, ok := keyLine["autoupgrade"]; ok {
		b, err := parseINIBool(projVal["autoupgrade"])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: [project] autoupgrade: %w", name, line, err)
		}
		p.AutoUpgrade = &b
	}
	return p, nil
}

// splitINIKey splits "key = value", "key=value", "key := value" or
// "key: value" into trimmed key and value.
func splitINIKey(line string) (key, value string, ok bool) {
	i := strings.IndexAny(line, "=:")
	if i < 0 {
		return "", "", false
	}
	key, value = line[:i], line[i+1:]
	if line[i] == ':' && strings.HasPrefix(value, "=") {
		value = value[1:]
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	return key, value, key != ""
}

func parseINIBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes", "on":
		return true, nil
	case "no", "off":
		return false, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(s))
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", s)
	}
	return b, nil
}

// blobEntryProblem says why a project.ini blob entry is unsafe, or "".
func blobEntryProblem(e string) string {
	switch {
	case strings.HasPrefix(e, "/") || strings.HasPrefix(e, "\\") || (len(e) > 1 && e[1] == ':'):
		return "absolute path"
	case strings.Contains(e, "\\"):
		return "backslash in path"
	}
	for _, el := range strings.Split(e, "/") {
		if el == ".." {
			return "path leaves the blobs folder (..)"
		}
	}
	if !ValidBlobName(e) {
		return "not a plain relative path (letters, digits, . _ + @ ~ = - and /)"
	}
	return ""
}
