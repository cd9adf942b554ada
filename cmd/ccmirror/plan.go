package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/manifest/request"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/staging/plan"
)

// planSummary is what `plan --json` prints: where the request went and the
// plan's report.
// planOptions is everything `ccmirror plan` takes.
type planOptions struct {
	Args        []string
	Output      string
	Root        string
	StateDir    string
	CycleServer string
	Timeout     time.Duration
	AllVersions bool
	SignKey     string
	JSON        bool
	Quiet       bool
}

type planSummary struct {
	Request   string `json:"request"`
	Signature string `json:"signature,omitempty"`
	*plan.Report
}

func planCommand(e *env) *cli.Command {
	o := &planOptions{}
	return &cli.Command{
		Name:      "plan",
		Usage:     "write a request file listing the project versions this CycleCloud server lacks",
		UsageText: "ccmirror plan [--root DIR] [--state-dir DIR] [--cycle-server PATH] [--all-versions] [--sign-key FILE] [--json] -o FILE\n\nexample: ccmirror plan -o request.json",
		Description: "Runs `cycle_server execute -format json 'select * from cloud.project'` (falling back to the\n" +
			"default `Key = value` format) and compares each project record with what is staged under\n" +
			"ROOT/work/staging/projects/. By default only the HIGHEST version of each project is considered\n" +
			"(versions compare numerically: 2.10.0 > 2.9.1); --all-versions considers every record.\n" +
			"A version whose folder is absent is 'missing'; one whose folder lacks project.ini or a blob is\n" +
			"'incomplete'. The repository and tag come from each record's Url\n" +
			"(https://github.com/OWNER/REPO/releases/TAG); other Url forms are reported, not guessed.\n" +
			"The request also lists every staged blob with its sha256, so that\n" +
			"`ccmirror fetch --request FILE` on the connected side carries only what this server lacks.\n" +
			"With --sign-key the request is signed (FILE.sig, namespace ccmirror-request); check it there with\n" +
			"`fetch --request FILE --allowed-signers ALLOWED`. Nothing missing: the request's wanted list is\n" +
			"empty and plan says \"nothing to fetch\" (exit 0).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Destination: &o.Output, Usage: "request `FILE` to write (required)"},
			rootFlag(&o.Root),
			stateDirFlag(&o.StateDir),
			&cli.StringFlag{Name: "cycle-server", Destination: &o.CycleServer, Usage: "the cycle_server command `PATH` (default ROOT/cycle_server)"},
			timeoutFlag(&o.Timeout, "cycle_server"),
			&cli.BoolFlag{Name: "all-versions", Destination: &o.AllVersions, Usage: "request every project version CycleCloud knows, not only the highest of each project"},
			signKeyFlag(&o.SignKey, "sign the request with this OpenSSH private key `FILE` (or agent: / agent:SHA256:…)"),
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print a JSON summary on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Destination: &o.Quiet, Usage: "print only warnings and errors"},
		},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runPlan(c.Context, e, o)
		},
	}
}

func runPlan(ctx context.Context, e *env, o *planOptions) error {
	if len(o.Args) != 0 {
		return usagef("plan: takes no arguments, got %q (see 'ccmirror plan --help')", o.Args[0])
	}
	out := o.Output
	if out == "" {
		return usagef("plan: -o FILE is required: where to write the request (e.g. -o request.json)")
	}
	if err := checkOutput("plan", out); err != nil {
		return err
	}
	var sign func(msg []byte) ([]byte, error)
	if key := o.SignKey; key != "" {
		s, err := trust.LoadSigner(key, promptPassphrase)
		if err != nil {
			return fmt.Errorf("plan: sign key: %w", err)
		}
		sign = func(msg []byte) ([]byte, error) { return s.SignNamespace(msg, request.Namespace) }
	}
	req, rep, err := plan.Make(ctx, plan.Options{
		Root:        o.Root,
		StateDir:    o.StateDir,
		CyclePath:   o.CycleServer,
		Timeout:     o.Timeout,
		AllVersions: o.AllVersions,
	})
	if err != nil {
		return err
	}
	if err := request.Save(out, req, sign); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	sum := planSummary{Request: out, Report: rep}
	if sign != nil {
		sum.Signature = request.SigPath(out)
	}
	if o.JSON {
		return writeJSON(e.stdout, sum)
	}
	printPlan(e, &sum, o.Quiet)
	return nil
}

func printPlan(e *env, s *planSummary, quiet bool) {
	for _, w := range s.Warnings {
		e.warn(w)
	}
	for _, u := range s.Unresolvable {
		e.warn(fmt.Sprintf("not requested: %s %s (Url %q): %s", u.Name, u.Version, u.URL, u.Problem))
	}
	if quiet {
		return
	}
	scope := "the highest version of each project"
	if s.AllVersions {
		scope = "every project version"
	}
	fmt.Fprintf(e.stdout, "CycleCloud knows %d project records; considering %s\n", s.Records, scope)
	for _, v := range s.Staged {
		fmt.Fprintf(e.stdout, "  staged:     %s %s\n", v.Name, v.Version)
	}
	for _, w := range s.Wanted {
		line := fmt.Sprintf("  %-11s %s %s <- %s@%s", w.Reason+":", w.Name, w.Version, w.Repository, w.Tag)
		if w.Detail != "" {
			line += " (" + w.Detail + ")"
		}
		fmt.Fprintln(e.stdout, line)
	}
	if len(s.Older) > 0 {
		var vs []string
		for _, v := range s.Older {
			vs = append(vs, v.Name+" "+v.Version)
		}
		fmt.Fprintf(e.stdout, "  not considered (older; --all-versions includes them): %s\n", strings.Join(vs, ", "))
	}
	state := "unsigned"
	if s.Signature != "" {
		state = "signed, " + s.Signature
	}
	inv := fmt.Sprintf("inventory: %s in %s, %s", planCount(s.InventoryBlobs, "staged blob"), planCount(s.InventoryProjects, "project"), text.HumanBytes(s.InventoryBytes))
	if len(s.Wanted) == 0 {
		fmt.Fprintf(e.stdout, "nothing to fetch: wrote %s with an empty wanted list (%s; %s)\n", s.Request, state, inv)
		return
	}
	fmt.Fprintf(e.stdout, "wrote %s: %s wanted (%s; %s)\n", s.Request, planCount(len(s.Wanted), "project version"), state, inv)
	carry, check := s.Request, ""
	if s.Signature != "" {
		carry, check = s.Request+" and "+s.Signature, " --allowed-signers ALLOWED_SIGNERS"
	}
	fmt.Fprintf(e.stdout, "next: carry %s to the connected side and run: ccmirror fetch --request %s%s -o BUNDLE\n", carry, s.Request, check)
}

// planCount renders "1 project", "2 projects".
func planCount(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
