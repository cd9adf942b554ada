package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDocs: the man page and completions come from the CLI itself, so they
// name every verb and every flag; the man page is clean roff and the bash
// completion completes verbs and flags.
func TestDocs(t *testing.T) {
	man := mustRunCLI(t, "docs", "man")
	bash := mustRunCLI(t, "docs", "bash")
	zsh := mustRunCLI(t, "docs", "zsh")
	for _, c := range visibleCommands(newApp(&env{})) {
		if !strings.Contains(man, ".SS "+c.Name+"\n") {
			t.Errorf("man page lacks a section for %s", c.Name)
		}
		if !strings.Contains(zsh, "'"+c.Name+":") || !strings.Contains(bash, "  "+c.Name+") flags=") {
			t.Errorf("completions lack %s", c.Name)
		}
		for _, f := range c.Flags {
			n := "--" + f.Names()[0]
			if !strings.Contains(man, roff(n)) || !strings.Contains(bash, n) || !strings.Contains(zsh, "'"+n+"[") {
				t.Errorf("%s %s missing from the man page or a completion", c.Name, n)
			}
		}
		for _, sub := range c.Subcommands {
			if !strings.Contains(man, ".SS "+c.Name+" "+sub.Name+"\n") {
				t.Errorf("man page lacks a section for %s %s", c.Name, sub.Name)
			}
			for _, f := range sub.Flags {
				n := "--" + f.Names()[0]
				if !strings.Contains(man, roff(n)) || !strings.Contains(bash, n) || !strings.Contains(zsh, "'"+n+"[") {
					t.Errorf("%s %s %s missing from the man page or a completion", c.Name, sub.Name, n)
				}
			}
		}
	}
	dir := t.TempDir()
	for name, s := range map[string]string{"ccmirror.1": man, "ccmirror.bash": bash, "_ccmirror": zsh} {
		os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644)
	}
	if _, err := exec.LookPath("groff"); err == nil {
		out, err := exec.Command("groff", "-man", "-ww", "-z", filepath.Join(dir, "ccmirror.1")).CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Errorf("groff -ww: %v\n%s", err, out)
		}
	} else {
		t.Log("no groff: the man page's roff is not checked")
	}
	if _, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command("zsh", "-n", filepath.Join(dir, "_ccmirror")).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, out)
		}
	} else {
		t.Log("no zsh: the zsh completion's syntax is not checked")
	}
	complete := func(words ...string) string {
		script := ". " + filepath.Join(dir, "ccmirror.bash") + "\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_ccmirror\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := complete("ccmirror", "ver"); got != "verify" {
		t.Errorf("completing 'ccmirror ver': %q, want verify", got)
	}
	if got := complete("ccmirror", "install", "--allowed"); got != "--allowed-signers" {
		t.Errorf("completing 'ccmirror install --allowed': %q", got)
	}
}
