package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// errStop ends a walk early without an error.
var errStop = errors.New("stop")

// lang is how a file's lines are read: its comment and continuation rules
// and where commands are found.
type lang int

const (
	langSkip       lang = iota // documentation, data, binaries
	langShell                  // sh, bash: commands at command position
	langPowerShell             // ps1: # and <# #> comments, ` continues
	langBatch                  // bat, cmd: REM and :: comments, ^ continues
	langPython                 // py: commands inside strings and lists
	langRuby                   // rb (chef recipes): commands inside strings, chef resources
	langRepo                   // yum .repo files: # and ; comments
	langText                   // other text (configs, templates): URLs only
	langCLike                  // js, ts, groovy, cs, java, go: // and /* */ comments, commands inside strings
	langDockerfile             // Dockerfile: FROM images, RUN shell commands
)

// classify decides how to read a file from its name and first bytes.
func classify(name string, head []byte) lang {
	if bytes.IndexByte(head, 0) >= 0 {
		return langSkip
	}
	base := strings.ToLower(path.Base(name))
	switch path.Ext(base) {
	case ".sh", ".bash", ".ksh", ".zsh":
		return langShell
	case ".ps1", ".psm1":
		return langPowerShell
	case ".bat", ".cmd":
		return langBatch
	case ".py":
		return langPython
	case ".rb":
		return langRuby
	case ".repo":
		return langRepo
	case ".list", ".sources":
		return langRepo
	case ".js", ".mjs", ".ts", ".groovy", ".gradle", ".cs", ".java", ".go", ".kt":
		return langCLike
	case ".dockerfile", ".containerfile":
		return langDockerfile
	case ".md", ".txt", ".rst", ".html", ".htm", ".json", ".pdf", ".png", ".jpg", ".gif", ".svg",
		".whl", ".gz", ".tgz", ".zip", ".tar", ".rpm", ".deb", ".xz", ".bz2", ".pyc", ".so", ".exe", ".dll",
		".lock", ".csv", ".ipynb":
		return langSkip
	}
	if base == "license" || base == "notice" || base == "readme" || base == "thirdpartynotice" {
		return langSkip
	}
	if base == "dockerfile" || base == "containerfile" || strings.HasPrefix(base, "dockerfile.") {
		return langDockerfile
	}
	if bytes.HasPrefix(head, []byte("#!")) {
		first, _, _ := bytes.Cut(head, []byte("\n"))
		switch s := string(first); {
		case strings.Contains(s, "python"):
			return langPython
		case strings.Contains(s, "ruby"):
			return langRuby
		case strings.Contains(s, "pwsh") || strings.Contains(s, "powershell"):
			return langPowerShell
		case strings.Contains(s, "sh"):
			return langShell
		}
	}
	return langText
}

// logical is one logical line: physical lines joined at continuations,
// comments removed.
type logical struct {
	n    int // 1-based number of its first physical line
	text string
}

// lineReader yields the logical lines of one file within the limits and
// notes what it had to skip.
type lineReader struct {
	ctx      context.Context
	br       *bufio.Reader
	lang     lang
	file     string
	c        *collector
	maxLine  int
	n        int  // physical lines read
	long     int  // lines skipped for length
	inBlock  bool // inside a PowerShell <# #> comment or a Python docstring
	blockEnd string
	err      error
}

// physical returns the next physical line without its end, and whether it
// was cut at the length limit.
func (lr *lineReader) physical() (string, bool, error) {
	var buf []byte
	cut := false
	for {
		chunk, isPrefix, err := lr.br.ReadLine()
		if err != nil {
			if err == io.EOF && (len(buf) > 0 || cut) {
				break
			}
			return "", false, err
		}
		if len(buf)+len(chunk) > lr.maxLine {
			cut = true
		} else {
			buf = append(buf, chunk...)
		}
		if !isPrefix {
			break
		}
	}
	lr.n++
	return string(buf), cut, nil
}

// next returns the next logical line with code in it, or io.EOF.
func (lr *lineReader) next() (logical, error) {
	for {
		if err := lr.ctx.Err(); err != nil {
			return logical{}, err
		}
		s, cut, err := lr.physical()
		if err != nil {
			return logical{}, err
		}
		start := lr.n
		if cut {
			lr.skipLong(start)
			if lr.continues(s) {
				// The rest of this logical line goes with it.
				for {
					t, _, err := lr.physical()
					if err != nil || !lr.continues(t) {
						break
					}
				}
			}
			continue
		}
		for lr.continues(s) {
			t, cut2, err := lr.physical()
			if err != nil {
				break
			}
			s = s[:len(s)-1] + " " + t
			if cut2 || len(s) > lr.maxLine {
				cut = true
			}
			if cut2 {
				break
			}
		}
		if cut {
			lr.skipLong(start)
			continue
		}
		code := lr.uncomment(s)
		if strings.TrimSpace(code) == "" {
			continue
		}
		return logical{n: start, text: code}, nil
	}
}

func (lr *lineReader) skipLong(line int) {
	lr.long++
	if lr.long == 1 {
		lr.c.cut(fmt.Sprintf("%s:%d: line longer than %d bytes: not scanned", lr.file, line, lr.maxLine))
	}
}

// continues reports whether s ends with the language's line continuation
// (an odd number of trailing backslashes for shell and Python).
func (lr *lineReader) continues(s string) bool {
	if s == "" || lr.isComment(s) {
		return false
	}
	switch lr.lang {
	case langShell, langPython, langDockerfile:
		n := 0
		for n < len(s) && s[len(s)-1-n] == '\\' {
			n++
		}
		return n%2 == 1
	case langPowerShell:
		return s[len(s)-1] == '`'
	case langBatch:
		return s[len(s)-1] == '^'
	}
	return false
}

// isComment reports whether a whole line is a comment.
func (lr *lineReader) isComment(s string) bool {
	t := strings.TrimSpace(s)
	switch lr.lang {
	case langBatch:
		l := strings.ToLower(t)
		return strings.HasPrefix(l, "::") || l == "rem" || l == "@rem" ||
			strings.HasPrefix(l, "rem ") || strings.HasPrefix(l, "@rem ") || strings.HasPrefix(l, "rem\t")
	case langRepo:
		return strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";")
	case langCLike:
		return strings.HasPrefix(t, "//")
	default:
		return strings.HasPrefix(t, "#")
	}
}

// uncomment returns the code of one logical line: "" for a comment line,
// else the line without a trailing comment.
func (lr *lineReader) uncomment(s string) string {
	if lr.inBlock {
		i := strings.Index(s, lr.blockEnd)
		if i < 0 {
			return ""
		}
		lr.inBlock = false
		s = s[i+len(lr.blockEnd):]
	}
	t := strings.TrimSpace(s)
	switch lr.lang {
	case langCLike:
		if i := strings.Index(s, "/*"); i >= 0 && !inQuotes(s, i) {
			rest := s[i+2:]
			if j := strings.Index(rest, "*/"); j >= 0 {
				return lr.uncomment(s[:i] + " " + rest[j+2:])
			}
			lr.inBlock, lr.blockEnd = true, "*/"
			s = s[:i]
		}
	case langPowerShell:
		if i := strings.Index(s, "<#"); i >= 0 && !inQuotes(s, i) {
			rest := s[i+2:]
			if j := strings.Index(rest, "#>"); j >= 0 {
				return lr.uncomment(s[:i] + " " + rest[j+2:])
			}
			lr.inBlock, lr.blockEnd = true, "#>"
			s = s[:i]
		}
	case langPython:
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(t, q) {
				if strings.Count(t, q)%2 == 1 {
					lr.inBlock, lr.blockEnd = true, q
				}
				return ""
			}
		}
	}
	if lr.isComment(s) {
		return ""
	}
	switch lr.lang {
	case langShell, langPython, langRuby, langPowerShell, langDockerfile:
		return cutTrailingComment(s)
	case langCLike:
		return cutSlashComment(s)
	}
	return s
}

// cutSlashComment removes a " // comment" outside quotes (a URL's "://"
// never follows white space).
func cutSlashComment(s string) string {
	var q byte
	for i := 0; i+1 < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == '\\' {
				i++
			} else if c == q {
				q = 0
			}
		case c == '\'' || c == '"' || c == '`':
			q = c
		case c == '/' && s[i+1] == '/' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

// cutTrailingComment removes a " # comment" outside quotes. A # that does
// not follow white space (URL fragments, $#, ${#x}) is kept.
func cutTrailingComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == '\\' && q == '"' {
				i++
			} else if c == q {
				q = 0
			}
		case c == '\\':
			i++
		case c == '\'' || c == '"':
			q = c
		case c == '#' && i > 0 && (s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

// inQuotes reports whether byte i of s lies inside a quoted string.
func inQuotes(s string, i int) bool {
	var q byte
	for j := 0; j < i && j < len(s); j++ {
		c := s[j]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		}
	}
	return q != 0
}

// scanFile scans one file's text: file is the name findings carry, name
// decides the language, spec is the spec findings carry.
func scanFile(ctx context.Context, c *collector, file, spec, name string, size int64, r io.Reader) error {
	lim := c.lim
	counted := &countingReader{r: io.LimitReader(r, lim.MaxFileSize)}
	br := bufio.NewReaderSize(counted, 32<<10)
	head, err := br.Peek(8 << 10)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return fmt.Errorf("read %s: %w", file, err)
	}
	lg := classify(name, head)
	if lg == langSkip {
		return nil
	}
	if size > lim.MaxFileSize {
		c.cut(fmt.Sprintf("%s: %d bytes, only the first %d scanned", file, size, lim.MaxFileSize))
	}
	rd := &lineReader{ctx: ctx, br: br, lang: lg, file: file, c: c, maxLine: lim.MaxLineLength}
	s := &scriptScanner{c: c, file: file, spec: spec, lang: lg, chefBlob: -1}
	for {
		ln, err := rd.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read %s: %w", file, err)
		}
		s.line(ln)
	}
	if size < 0 && counted.n >= lim.MaxFileSize {
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n > 0 {
			c.cut(fmt.Sprintf("%s: larger than %d bytes, only the first %d scanned", file, lim.MaxFileSize, lim.MaxFileSize))
		}
	}
	if rd.long > 1 {
		c.cut(fmt.Sprintf("%s: %d lines longer than %d bytes: not scanned", file, rd.long, lim.MaxLineLength))
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
