// Command ccmirror carries Azure CycleCloud projects across an air gap: it
// fetches a project release from GitHub into one signed bundle file, and
// installs that bundle into a CycleCloud server's staging tree.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/mirror"
)

// Exit codes, as documented in README.md and the man page (ccmirror docs man).
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitUpstream = 3
	exitVerify   = 4
	exitConflict = 5
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		signal.Stop(sigs) // a second Ctrl-C kills at once
		cancel(interrupt{s})
	}()
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	cancel(nil)
	os.Exit(code)
}

// interrupt is the cause of a context cancelled by a signal.
type interrupt struct{ sig os.Signal }

func (i interrupt) Error() string { return "interrupted by " + i.sig.String() }

// exitCode is 128 + the signal number, as shells report a process killed by it.
func (i interrupt) exitCode() int {
	if s, ok := i.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitFailure
}

// env holds what a command needs from its surroundings, so commands run in
// tests without a shell.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// verbose is the global --verbose flag.
	verbose bool
	// warned are the warnings printed so far (each is printed once).
	warned warnings
	// task says what the verb is doing and how to resume it, for the
	// message of an interrupted run (see doing).
	task, resume string
}

// doing records what the verb is about to do ("fetch slurm@2.5.0") and what
// rerunning it does ("rerun resumes from the cache"), for the message when
// the run is interrupted.
func (e *env) doing(task, resume string) { e.task, e.resume = task, resume }

// verbs lists every command in the order --help shows them. A new verb is
// one line here and one file with its constructor.
var verbs = []func(*env) *cli.Command{
	fetchCommand,
	verifyCommand,
	inspectCommand,
	installCommand,
	statusCommand,
	scanCommand,
	planCommand,
	pushCommand,
	pullCommand,
	syncCommand,
	splitCommand,
	joinCommand,
	updateCommand,
	cacheCommand,
	docsCommand,
}

// run executes the CLI with args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: &syncWriter{w: stderr}}
	app := newApp(e)
	err := app.RunContext(ctx, intersperse(app, args))
	if err == nil {
		return exitOK
	}
	var sig interrupt
	if ctx.Err() != nil && errors.As(context.Cause(ctx), &sig) {
		task := e.task
		if task == "" {
			task = strings.Join(args[1:], " ")
		}
		msg := "interrupted: " + task
		if e.resume != "" {
			msg += " (" + e.resume + ")"
		}
		fmt.Fprintf(stderr, "ccmirror: %s\n", printable(msg, maxErrorLine))
		return sig.exitCode()
	}
	msg := oneLine(err.Error())
	if ctx.Err() != nil {
		msg = "interrupted: " + msg
	}
	fmt.Fprintf(stderr, "ccmirror: %s\n", printable(msg, maxErrorLine))
	return exitCode(ctx, err)
}

// usageError marks a command line the user must fix: it matches
// errclass.ErrUsage (exit 2) and its message is exactly what was given.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }
func (u usageError) Unwrap() error { return errclass.ErrUsage }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// exitCode maps an error to the documented exit code by its class.
func exitCode(ctx context.Context, err error) int {
	switch {
	case errors.Is(err, errclass.ErrUsage):
		return exitUsage
	case errors.Is(err, errclass.ErrVerify):
		return exitVerify
	case errors.Is(err, errclass.ErrConflict):
		return exitConflict
	case errors.Is(err, errclass.ErrUpstream):
		return exitUpstream
	case ctx.Err() != nil:
		return exitFailure
	}
	return exitFailure
}

// oneLine folds an error message onto a single line.
func oneLine(s string) string { return text.OneLine(s) }

func newApp(e *env) *cli.App {
	onUsage := func(c *cli.Context, err error, _ bool) error { return usageError{err.Error()} }
	app := &cli.App{
		Name:    "ccmirror",
		Usage:   "carry Azure CycleCloud projects across an air gap",
		Version: mirror.Version,
		Description: "Connected side: fetch a release into one signed bundle (fetch, push, sync).\n" +
			"Disconnected side: verify it and stage it for CycleCloud (verify, inspect, install, status, plan, pull).\n" +
			"Exit codes: 0 done, 1 failure, 2 usage, 3 upstream unavailable, 4 verification failed, 5 conflict.",
		Reader:               e.stdin,
		Writer:               e.stdout,
		ErrWriter:            e.stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		OnUsageError:         onUsage,
		ExitErrHandler:       func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Usage: "log each step to stderr (default: warnings only)", Destination: &e.verbose},
		},
	}
	for _, v := range verbs {
		app.Commands = append(app.Commands, v(e))
	}
	app.Action = func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.ShowAppHelp(c)
		}
		var names []string
		for _, cmd := range visibleCommands(c.App) {
			names = append(names, cmd.Name)
		}
		return usagef("unknown command %q; the commands are: %s (see 'ccmirror --help')", c.Args().First(), strings.Join(names, ", "))
	}
	var examples []string
	for _, c := range app.Commands {
		c.OnUsageError = onUsage
		if _, ex, ok := strings.Cut(c.UsageText, "example: "); ok {
			examples = append(examples, "   "+ex)
		}
	}
	app.Description += "\n\nEXAMPLES:\n" + strings.Join(examples, "\n")
	return app
}

// logger returns the slog logger commands use: text lines on stderr, never
// animated. By default only warnings, so a failure is one line; --verbose
// adds what happens step by step, unless quiet.
func (e *env) logger(quiet bool) *slog.Logger {
	level := slog.LevelWarn
	if e.verbose && !quiet {
		level = slog.LevelDebug
	}
	return slog.New(onceHandler{slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}), &e.warned})
}

// oneArg returns the single positional argument of a verb, or a usage error.
func oneArg(verb, what string, args []string) (string, error) {
	if len(args) != 1 {
		return "", usagef("%s: want exactly one %s argument, got %d (see 'ccmirror %s --help')", verb, what, len(args), verb)
	}
	return args[0], nil
}

// intersperse moves a command's flags before its positional arguments, so
// "ccmirror fetch slurm@2.5.0 -o x.tar" works like "fetch -o x.tar slurm@2.5.0"
// (urfave/cli stops reading flags at the first argument).
func intersperse(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++ // global flags take no values
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	// "ccmirror cache prune --max-size 1M", also "cache --cache DIR prune
	// …": the subcommand goes first and the flags are all its own.
	if len(cmd.Subcommands) > 0 {
		for j := i + 1; j < len(args); j++ {
			if args[j] == "--" {
				break
			}
			if sub := cmd.Command(args[j]); sub != nil && !strings.HasPrefix(args[j], "-") && !takesValueBefore(cmd, args[j-1]) {
				args = append(append(append(append([]string{}, args[:i+1]...), args[j]), args[i+1:j]...), args[j+1:]...)
				i++
				cmd = sub
				break
			}
		}
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var global, flags, pos []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--verbose" && !hasFlag(cmd, "verbose"):
			global = append(global, a) // "ccmirror install --verbose …" means the global flag
		case a == "--":
			pos = append(pos, rest[j+1:]...)
			j = len(rest)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
		default:
			pos = append(pos, a)
		}
	}
	out := append(append(append([]string{}, args[:i]...), global...), args[i])
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(append(out, "--"), pos...)
	}
	return out
}

// takesValueBefore reports whether prev is a flag of cmd that takes the
// next argument as its value ("--cache prune" names a folder "prune").
func takesValueBefore(cmd *cli.Command, prev string) bool {
	name := strings.TrimLeft(prev, "-")
	if !strings.HasPrefix(prev, "-") || strings.Contains(name, "=") {
		return false
	}
	for _, f := range cmd.Flags {
		if _, isBool := f.(*cli.BoolFlag); isBool {
			continue
		}
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}
