package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/mirror"
)

// docsOptions is everything `ccmirror docs` takes.
type docsOptions struct {
	Args []string
	// App is the CLI to document.
	App *cli.App
}

// docsCommand writes the man page and shell completions from the CLI's own
// definition, so they can never disagree with --help (`make dist` runs it).
func docsCommand(e *env) *cli.Command {
	o := &docsOptions{}
	return &cli.Command{
		Name:      "docs",
		Usage:     "write the man page or bash/zsh completions, generated from this CLI, on stdout",
		UsageText: "ccmirror docs man|bash|zsh\n\nexample: ccmirror docs bash > /etc/bash_completion.d/ccmirror",
		Action: func(c *cli.Context) error {
			o.Args, o.App = c.Args().Slice(), c.App
			return runDocs(c.Context, e, o)
		},
	}
}

func runDocs(_ context.Context, e *env, o *docsOptions) error {
	kind, err := oneArg("docs", "man|bash|zsh", o.Args)
	if err != nil {
		return err
	}
	app := o.App
	switch kind {
	case "man":
		return writeMan(e.stdout, app)
	case "bash":
		return writeBash(e.stdout, app)
	case "zsh":
		return writeZsh(e.stdout, app)
	}
	return usagef("docs: want man, bash or zsh, not %q", kind)
}

// visibleCommands are the verbs --help lists.
func visibleCommands(app *cli.App) []*cli.Command {
	var out []*cli.Command
	for _, c := range app.Commands {
		if !c.Hidden {
			out = append(out, c)
		}
	}
	return out
}

// allFlags are a command's flags and its subcommands' (each name once),
// for completions: "ccmirror cache prune --max-size" completes like any flag.
func allFlags(c *cli.Command) []cli.Flag {
	out := append([]cli.Flag(nil), c.Flags...)
	seen := map[string]bool{}
	for _, f := range c.Flags {
		seen[f.Names()[0]] = true
	}
	for _, sub := range c.Subcommands {
		for _, f := range sub.Flags {
			if !seen[f.Names()[0]] {
				seen[f.Names()[0]] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// flagDoc is what the docs say about one flag.
type flagDoc struct {
	names       []string // "--output", "-o"
	placeholder string   // "FILE", "" for a boolean
	usage       string
	def         string
	env         []string
}

func flagDocs(flags []cli.Flag) []flagDoc {
	var out []flagDoc
	for _, f := range flags {
		d := flagDoc{}
		for _, n := range f.Names() {
			if len(n) == 1 {
				d.names = append(d.names, "-"+n)
			} else {
				d.names = append(d.names, "--"+n)
			}
		}
		if g, ok := f.(cli.DocGenerationFlag); ok {
			name, usage := unquoteUsage(g.GetUsage())
			d.usage = usage
			if g.TakesValue() {
				d.placeholder = name
				if d.placeholder == "" {
					d.placeholder = "VALUE"
				}
				d.def = g.GetValue()
				if t := g.GetDefaultText(); t != "" {
					d.def = t
				}
			}
			d.env = g.GetEnvVars()
		}
		out = append(out, d)
	}
	return out
}

// unquoteUsage splits a flag usage into its `PLACEHOLDER` and the text
// without the backquotes, as --help shows it.
func unquoteUsage(usage string) (name, text string) {
	a := strings.IndexByte(usage, '`')
	if a < 0 {
		return "", usage
	}
	b := strings.IndexByte(usage[a+1:], '`')
	if b < 0 {
		return "", usage
	}
	name = usage[a+1 : a+1+b]
	return name, usage[:a] + name + usage[a+2+b:]
}

// roff escapes s for a man page line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var ascii strings.Builder
	for _, r := range s {
		if r > 127 {
			fmt.Fprintf(&ascii, `\[u%04X]`, r)
		} else {
			ascii.WriteRune(r)
		}
	}
	s = ascii.String()
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

func writeMan(w io.Writer, app *cli.App) error {
	var b strings.Builder
	desc, _, _ := strings.Cut(app.Description, "\n\nEXAMPLES:")
	fmt.Fprintf(&b, ".TH CCMIRROR 1 \"\" \"ccmirror %s\" \"User Commands\"\n", roff(mirror.Version))
	fmt.Fprintf(&b, ".SH NAME\nccmirror \\- %s\n", roff(app.Usage))
	b.WriteString(".SH SYNOPSIS\n.B ccmirror\n[\\fB\\-\\-verbose\\fR] \\fICOMMAND\\fR [\\fIflags\\fR] [\\fIarguments\\fR]\n")
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", strings.ReplaceAll(roff(desc), "\n", "\n.br\n"))
	b.WriteString(".SH GLOBAL FLAGS\n")
	writeManFlags(&b, app.Flags)
	b.WriteString(".SH COMMANDS\n")
	for _, c := range visibleCommands(app) {
		synopsis, example, _ := strings.Cut(c.UsageText, "\n\nexample: ")
		fmt.Fprintf(&b, ".SS %s\n%s.\n.PP\n.nf\n%s\n.fi\n", roff(c.Name), roff(c.Usage), roff(synopsis))
		if c.Description != "" {
			fmt.Fprintf(&b, ".PP\n%s\n", roff(strings.ReplaceAll(c.Description, "\n", " ")))
		}
		writeManFlags(&b, c.Flags)
		if example != "" {
			fmt.Fprintf(&b, ".PP\nExample:\n.PP\n.RS\n.nf\n%s\n.fi\n.RE\n", roff(example))
		}
		for _, sub := range c.Subcommands {
			if sub.Hidden {
				continue
			}
			synopsis, _, _ := strings.Cut(sub.UsageText, "\n\n")
			fmt.Fprintf(&b, ".SS %s %s\n%s.\n.PP\n.nf\n%s\n.fi\n", roff(c.Name), roff(sub.Name), roff(sub.Usage), roff(synopsis))
			writeManFlags(&b, sub.Flags)
		}
	}
	b.WriteString(".SH EXIT STATUS\n")
	for _, s := range [][2]string{
		{"0", "done (also: nothing to do)"},
		{"1", "other failure"},
		{"2", "usage: a flag, argument or file given is wrong"},
		{"3", "upstream unavailable: network, GitHub or storage error, rate limit, release or blob not found"},
		{"4", "verification failed, or not a ccmirror bundle; nothing was written (status: something staged is incomplete, wrong or half\\-installed)"},
		{"5", "conflict: staged content or an output file differs and no \\-\\-force, or another ccmirror holds the lock"},
		{"130, 143", "interrupted by SIGINT or SIGTERM; rerunning resumes"},
	} {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", s[0], s[1])
	}
	b.WriteString(".SH ENVIRONMENT\n")
	for _, v := range environment(app) {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\nstands in for %s\n", roff(v[0]), roff(v[1]))
	}
	for _, v := range [][2]string{
		{"CCMIRROR_KEY_PASSPHRASE", "the passphrase of an encrypted signing key when there is no terminal to ask on"},
		{"AZURE_STORAGE_CONNECTION_STRING", "blob storage credentials (after a SAS token in the URL)"},
		{"AZURE_STORAGE_KEY, AZURE_STORAGE_ACCOUNT", "a shared key, and the account of a custom domain"},
	} {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roff(v[0]), roff(v[1]))
	}
	b.WriteString(".SH FILES\n.TP\n/etc/ccmirror/allowed_signers\nthe OpenSSH allowed_signers file naming the keys whose bundles a server trusts (by convention)\n")
	b.WriteString(".SH SEE ALSO\n\\fBssh\\-keygen\\fR(1), \\fBsha256sum\\fR(1); README.md and manifest/FORMAT.md in the source tree\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeManFlags(b *strings.Builder, flags []cli.Flag) {
	for _, d := range flagDocs(flags) {
		var names []string
		for _, n := range d.names {
			names = append(names, `\fB`+roff(n)+`\fR`)
		}
		head := strings.Join(names, ", ")
		if d.placeholder != "" {
			head += ` \fI` + roff(d.placeholder) + `\fR`
		}
		text := d.usage
		if d.def != "" {
			text += " (default: " + d.def + ")"
		}
		if len(d.env) > 0 {
			text += " [env: " + strings.Join(d.env, ", ") + "]"
		}
		fmt.Fprintf(b, ".TP\n%s\n%s\n", head, roff(text))
	}
}

// environment lists every variable a flag reads, with the flags it stands
// in for, sorted.
func environment(app *cli.App) [][2]string {
	by := map[string][]string{}
	for _, c := range visibleCommands(app) {
		for _, d := range flagDocs(c.Flags) {
			for _, v := range d.env {
				f := d.names[0]
				if !contains(by[v], f) {
					by[v] = append(by[v], f)
				}
			}
		}
	}
	var out [][2]string
	for v, fs := range by {
		out = append(out, [2]string{v, strings.Join(fs, ", ")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeBash(w io.Writer, app *cli.App) error {
	var b strings.Builder
	var verbs []string
	for _, c := range visibleCommands(app) {
		verbs = append(verbs, c.Name)
	}
	b.WriteString("# bash completion for ccmirror (generated by `ccmirror docs bash`)\n")
	b.WriteString("_ccmirror() {\n")
	b.WriteString("  local cur=${COMP_WORDS[COMP_CWORD]} verb= i\n")
	b.WriteString("  for ((i = 1; i < COMP_CWORD; i++)); do\n")
	b.WriteString("    case ${COMP_WORDS[i]} in -*) ;; *) verb=${COMP_WORDS[i]}; break ;; esac\n")
	b.WriteString("  done\n")
	b.WriteString("  if [ -z \"$verb\" ]; then\n")
	fmt.Fprintf(&b, "    COMPREPLY=($(compgen -W '%s --verbose --help --version' -- \"$cur\"))\n", strings.Join(verbs, " "))
	b.WriteString("    return\n  fi\n")
	b.WriteString("  local flags\n  case $verb in\n")
	for _, c := range visibleCommands(app) {
		var names []string
		for _, d := range flagDocs(allFlags(c)) {
			names = append(names, d.names...)
		}
		names = append(names, "--help")
		fmt.Fprintf(&b, "  %s) flags='%s' ;;\n", c.Name, strings.Join(names, " "))
	}
	b.WriteString("  *) flags= ;;\n  esac\n")
	b.WriteString("  if [[ $cur == -* ]]; then\n")
	b.WriteString("    COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n")
	b.WriteString("  else\n    COMPREPLY=()\n  fi\n}\n")
	b.WriteString("complete -o bashdefault -o default -F _ccmirror ccmirror\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// zshQuote makes s safe inside a single-quoted zsh _arguments spec.
func zshQuote(s string) string {
	s = strings.NewReplacer("'", `'\''`, "[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
	return strings.ReplaceAll(s, "\n", " ")
}

func writeZsh(w io.Writer, app *cli.App) error {
	var b strings.Builder
	b.WriteString("#compdef ccmirror\n# zsh completion for ccmirror (generated by `ccmirror docs zsh`)\n")
	b.WriteString("_ccmirror() {\n  local curcontext=$curcontext state line\n  local -a verbs\n  verbs=(\n")
	for _, c := range visibleCommands(app) {
		fmt.Fprintf(&b, "    '%s:%s'\n", c.Name, zshQuote(c.Usage))
	}
	b.WriteString("  )\n")
	b.WriteString("  _arguments -C '--verbose[log each step to stderr]' '(- *)--help[show help]' '(- *)--version[print the version]' '1: :->verb' '*:: :->args'\n")
	b.WriteString("  case $state in\n  verb) _describe -t commands 'ccmirror command' verbs ;;\n  args)\n    case $words[1] in\n")
	for _, c := range visibleCommands(app) {
		fmt.Fprintf(&b, "    %s) _arguments", c.Name)
		for _, d := range flagDocs(allFlags(c)) {
			spec := ""
			if d.placeholder != "" {
				spec = ":" + zshQuote(strings.ToLower(d.placeholder)) + ":"
				if strings.Contains(d.placeholder, "FILE") || strings.Contains(d.placeholder, "DIR") || strings.Contains(d.placeholder, "PATH") {
					spec += "_files"
				}
			}
			for _, n := range d.names {
				fmt.Fprintf(&b, " \\\n        '%s[%s]%s'", n, zshQuote(d.usage), spec)
			}
		}
		b.WriteString(" \\\n        '*:file:_files' ;;\n")
	}
	b.WriteString("    esac ;;\n  esac\n}\n_ccmirror \"$@\"\n")
	_, err := io.WriteString(w, b.String())
	return err
}
