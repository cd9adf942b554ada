package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// maxErrorLine is the most an error line says, in runes: one line of a
// wide terminal. Longer messages lose their middle to "…": the start says
// what failed, the end why (an errno, a limit).
const maxErrorLine = 512

// printable makes s safe for one terminal line: control characters and
// invalid UTF-8 (a binary file's bytes quoted in an error) become "?", runs
// of them one "?", and s is cut to at most max runes by dropping its
// middle.
func printable(s string, max int) string {
	var out []rune
	lastBad := false
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		bad := (r == utf8.RuneError && size <= 1) || r == '\n' || r == '\r' || unicode.IsControl(r) ||
			(r >= 0x80 && !unicode.IsPrint(r) && r != ' ')
		if bad {
			if lastBad {
				continue
			}
			r = '?'
		}
		lastBad = bad
		out = append(out, r)
	}
	if len(out) > max && max > 1 {
		head := max * 2 / 3
		tail := max - head - 1
		out = append(append(out[:head:head], '…'), out[len(out)-tail:]...)
	}
	return string(out)
}

// warnings remembers the warnings printed, so each prints once however many
// layers report it (a package's WARN log line, its result's Warnings, a
// report's "warning:" line).
type warnings struct {
	mu   sync.Mutex
	seen []string
}

// warnKey is what makes two warnings the same: the text, lowercased, without
// a "warning:" prefix; every warning about --insecure-skip-signature is one.
func warnKey(msg string) string {
	k := strings.ToLower(strings.TrimSpace(msg))
	k = strings.TrimSpace(strings.TrimPrefix(k, "warning:"))
	if strings.Contains(k, "insecure-skip-signature") {
		return "--insecure-skip-signature"
	}
	return k
}

// first records msg and reports whether it is new. A warning that is
// another plus details ("msg key=value") is the same warning.
func (w *warnings) first(msg string) bool {
	k := warnKey(msg)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if k == s || strings.HasPrefix(k, s+" ") || strings.HasPrefix(s, k+" ") {
			return false
		}
	}
	w.seen = append(w.seen, k)
	return true
}

// warn prints "warning: msg" on stderr unless that warning was printed.
func (e *env) warn(msg string) {
	if e.warned.first(msg) {
		fmt.Fprintf(e.stderr, "warning: %s\n", printable(strings.TrimSpace(msg), maxErrorLine))
	}
}

// notice prints one line on stderr about a wait the user should see (a
// retry, a lock held by another process), as "ccmirror: line".
func (e *env) notice(line string) {
	fmt.Fprintf(e.stderr, "ccmirror: %s\n", printable(strings.TrimSpace(line), maxErrorLine))
}

// writeReport writes a report's text on stdout, except its "warning:"
// lines, which go to stderr through warn (once).
func (e *env) writeReport(write func(io.Writer) error) error {
	var buf bytes.Buffer
	err := write(&buf)
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if t := strings.ToLower(strings.TrimSpace(line)); strings.HasPrefix(t, "warning:") {
			e.warn(strings.TrimSpace(line)[len("warning:"):])
			continue
		}
		fmt.Fprintln(e.stdout, line)
	}
	return err
}

// onceHandler drops a warning (or worse) already printed.
type onceHandler struct {
	slog.Handler
	warned *warnings
}

func (h onceHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && r.Level < slog.LevelError && !h.warned.first(r.Message) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h onceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return onceHandler{h.Handler.WithAttrs(as), h.warned}
}

func (h onceHandler) WithGroup(name string) slog.Handler {
	return onceHandler{h.Handler.WithGroup(name), h.warned}
}

// syncWriter serializes writes to stderr: notices, warnings and log lines
// come from several goroutines, each line in one Write.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
