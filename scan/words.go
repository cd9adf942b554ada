package scan

import (
	"path"
	"regexp"
	"strings"
)

// word is one shell word: its text with quotes removed, and whether any
// of it was quoted (a literal in Python and Ruby).
type word struct {
	s      string
	quoted bool
	first  bool // splitCode: the first word of its string literal
}

// maxWords bounds the words of one command: a line of a million ";" is
// still linear.
const maxWords = 4096

// splitShell splits a logical line into commands at ; | & && || ` $( ( )
// and new lines, and each command into words. Quotes group words and are
// removed; redirections and their targets are dropped. PowerShell and
// batch lines use it too (their separators are a subset).
func splitShell(line string, lg lang) [][]word {
	var (
		cmds   [][]word
		cur    []word
		b      strings.Builder
		inWord bool
		quoted bool
		skip   bool // the next word is a redirection target
	)
	flushWord := func() {
		if !inWord {
			return
		}
		if skip {
			skip = false
		} else if len(cur) < maxWords {
			cur = append(cur, word{s: b.String(), quoted: quoted})
		}
		b.Reset()
		inWord, quoted = false, false
	}
	flushCmd := func() {
		flushWord()
		skip = false
		if len(cur) > 0 {
			cmds = append(cmds, cur)
		}
		cur = nil
	}
	escapes := lg == langShell
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' && lg != langBatch:
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			b.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord, quoted = true, true
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if escapes && line[j] == '\\' && j+1 < len(line) && strings.IndexByte("\"\\$`", line[j+1]) >= 0 {
					j++
				}
				b.WriteByte(line[j])
			}
			i = j
			inWord, quoted = true, true
		case c == '\\' && escapes:
			if i+1 < len(line) {
				b.WriteByte(line[i+1])
				i++
			}
			inWord = true
		case c == ' ' || c == '\t' || c == '\r':
			flushWord()
		case c == ';' || c == '|' || c == '\n':
			flushCmd()
		case c == '&':
			if i+1 < len(line) && line[i+1] == '>' {
				flushWord()
				skip = true
				i++
				for i+1 < len(line) && line[i+1] == '>' {
					i++
				}
				continue
			}
			flushCmd()
		case c == '`' && lg == langShell:
			flushCmd()
		case c == '(' || c == ')':
			if c == '(' && inWord && strings.HasSuffix(b.String(), "$") {
				s := b.String()
				b.Reset()
				b.WriteString(s[:len(s)-1])
				inWord = b.Len() > 0
			}
			flushCmd()
		case c == '>' || c == '<':
			if inWord && !quoted && isDigits(b.String()) {
				b.Reset()
				inWord = false
			}
			flushWord()
			for i+1 < len(line) && strings.IndexByte("<>&|", line[i+1]) >= 0 {
				i++
			}
			skip = true
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	flushCmd()
	return cmds
}

// splitCode splits a Python or Ruby line into commands and words: quotes do
// not group words but mark them literal, so the commands inside string
// literals and argument lists (["dnf", "install", "-y", pkg]) are found.
func splitCode(line string) [][]word {
	var (
		cmds   [][]word
		cur    []word
		b      strings.Builder
		q      byte
		quoted bool
		first  bool // the literal just opened: its next word is its first
		isHead bool // the word being read is the first of its literal
	)
	flushWord := func() {
		if b.Len() > 0 && len(cur) < maxWords {
			cur = append(cur, word{s: b.String(), quoted: quoted, first: isHead})
		}
		b.Reset()
		quoted, isHead = false, false
	}
	flushCmd := func() {
		flushWord()
		if len(cur) > 0 {
			cmds = append(cmds, cur)
		}
		cur = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' || c == '"':
			flushWord()
			switch q {
			case 0:
				q, first = c, true
			case c:
				q, first = 0, false
			}
		case c == '\\' && q != 0 && i+1 < len(line):
			i++ // \n, \t, \" inside a literal: a separator
			flushWord()
		case strings.IndexByte(" \t\r[](),", c) >= 0:
			flushWord()
		case c == ';' || c == '|' || c == '&':
			flushCmd()
		default:
			if b.Len() == 0 {
				quoted = q != 0
				isHead, first = first && q != 0, false
			}
			b.WriteByte(c)
		}
	}
	flushCmd()
	return cmds
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=`)

// cmdName is the program a command word runs: its base name, lower-case,
// without ".exe"; a variable such as ${PIP} or $PYTHON stands for what it
// is named after.
func cmdName(s string) string {
	if i := strings.LastIndexByte(s, '\\'); i >= 0 {
		s = s[i+1:]
	}
	s = path.Base(s)
	s = strings.ToLower(strings.TrimSuffix(strings.ToLower(s), ".exe"))
	if strings.HasPrefix(s, "$") {
		s = strings.Trim(s, "${}")
	}
	return s
}

// prefixes run the command that follows them.
var prefixes = map[string]bool{
	"then": true, "do": true, "else": true, "elif": true, "if": true, "while": true, "until": true,
	"!": true, "{": true, "}": true, "time": true, "nohup": true, "exec": true, "command": true,
	"builtin": true, "eval": true, "retry": true, "call": true, "&": true, "@": true, "+": true,
	"-": true, "--": true, "unbuffer": true, "chronic": true, "catchsegv": true,
}

// prefixValueOpts are the options of prefix commands that take a value.
var prefixValueOpts = map[string]map[string]bool{
	"sudo":    {"-u": true, "-g": true, "-C": true, "-D": true, "-h": true, "-p": true, "-r": true, "-t": true, "-U": true, "-T": true},
	"doas":    {"-u": true, "-C": true},
	"env":     {"-u": true, "-C": true, "-S": true, "--unset": true, "--chdir": true},
	"timeout": {"-s": true, "-k": true, "--signal": true, "--kill-after": true},
	"nice":    {"-n": true, "--adjustment": true},
	"ionice":  {"-c": true, "-n": true, "-p": true},
	"stdbuf":  {"-i": true, "-o": true, "-e": true},
	"xargs":   {"-I": true, "-n": true, "-P": true, "-d": true, "-a": true, "-L": true, "-s": true, "-E": true, "--max-args": true, "--max-procs": true, "--delimiter": true, "--arg-file": true},
	"runuser": {"-u": true, "-g": true, "-G": true, "-l": true},
	"chroot":  {},
}

// stripPrefixes removes what runs the real command: sudo and env (with
// their options), VAR=value assignments, timeout DURATION, xargs, shell
// keywords.
func stripPrefixes(ws []word) []word {
	for len(ws) > 0 {
		w := ws[0].s
		name := cmdName(w)
		switch {
		case prefixes[name] || prefixes[w]:
			ws = ws[1:]
		case prefixValueOpts[name] != nil:
			opts := prefixValueOpts[name]
			ws = ws[1:]
			for len(ws) > 0 {
				a := ws[0].s
				if a == "--" {
					ws = ws[1:]
					break
				}
				if strings.HasPrefix(a, "-") && len(a) > 1 {
					k, _, has := strings.Cut(a, "=")
					ws = ws[1:]
					if opts[k] && !has && len(ws) > 0 {
						ws = ws[1:]
					}
					continue
				}
				if name == "env" && assignment.MatchString(a) {
					ws = ws[1:]
					continue
				}
				break
			}
			if name == "timeout" && len(ws) > 0 {
				ws = ws[1:] // the duration
			}
			if name == "chroot" && len(ws) > 0 {
				ws = ws[1:] // chroot's new root
			}
		case assignment.MatchString(w):
			ws = ws[1:]
		default:
			return ws
		}
	}
	return ws
}
