package scan

import (
	"fmt"
	"net"
	"regexp"
	"strings"
)

// scriptScanner turns the logical lines of one file into findings.
type scriptScanner struct {
	c    *collector
	file string
	spec string
	lang lang

	// Ruby: the jetpack_download block a "project" line belongs to, and
	// the end of a heredoc of shell code.
	chefBlob int
	heredoc  string
}

// maxDepth bounds nested "bash -c '…'" commands.
const maxDepth = 3

func (s *scriptScanner) add(kind, target string, line int, satisfied bool, detail string) *Finding {
	s.c.add(Finding{Kind: kind, Target: target, File: s.file, Line: line, Spec: s.spec, Satisfied: satisfied, Detail: detail})
	if n := len(s.c.findings); n > 0 {
		f := &s.c.findings[n-1]
		if f.Kind == kind && f.Target == target && f.Line == line && f.File == s.file {
			return f
		}
	}
	return nil
}

// line scans one logical line: its commands first (they claim the URLs
// they consume, such as a git clone's), then every URL left.
func (s *scriptScanner) line(ln logical) {
	var consumed []string
	switch s.lang {
	case langShell, langPowerShell, langBatch:
		for _, cmd := range splitShell(ln.text, s.lang) {
			s.command(cmd, ln.n, &consumed, 0, false)
		}
	case langPython, langCLike:
		for _, cmd := range splitCode(ln.text) {
			s.anywhere(cmd, ln.n, &consumed)
		}
	case langDockerfile:
		s.dockerfile(ln, &consumed)
	case langRuby:
		if s.heredoc != "" {
			if strings.TrimSpace(ln.text) == s.heredoc {
				s.heredoc = ""
			} else {
				for _, cmd := range splitShell(ln.text, langShell) {
					s.command(cmd, ln.n, &consumed, 0, false)
				}
			}
		} else {
			s.chef(ln)
			for _, cmd := range splitCode(ln.text) {
				s.anywhere(cmd, ln.n, &consumed)
			}
			if m := rubyHeredoc.FindStringSubmatch(ln.text); m != nil {
				s.heredoc = m[1]
			}
		}
	}
	s.urls(ln, consumed)
}

var (
	rubyHeredoc   = regexp.MustCompile(`<<[-~]?['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?\s*$`)
	chefJetpack   = regexp.MustCompile(`^\s*jetpack_download(?:\s+|\s*\(\s*)(?:["']([^"']+)["']|([A-Za-z_][A-Za-z0-9_]*))`)
	chefProject   = regexp.MustCompile(`^\s*project\s*\(?\s*["']([^"']+)["']`)
	chefPackage   = regexp.MustCompile(`^\s*(package|yum_package|dnf_package|apt_package|zypper_package)(?:\s+|\s*\(\s*)(.*?)\s*\)?\s*(\bdo\b.*)?$`)
	chefLiteral   = regexp.MustCompile(`["']([^"']+)["']`)
	chefWordArray = regexp.MustCompile(`^%w[\[{(](.*)[\]})]$`)
)

var dockerInstr = regexp.MustCompile(`^\s*([A-Za-z]+)\s+(.*)$`)

// dockerfile reads a Dockerfile line: FROM pulls an image, RUN runs shell.
func (s *scriptScanner) dockerfile(ln logical, consumed *[]string) {
	m := dockerInstr.FindStringSubmatch(ln.text)
	if m == nil {
		return
	}
	switch strings.ToUpper(m[1]) {
	case "FROM":
		for _, w := range strings.Fields(m[2]) {
			if strings.HasPrefix(w, "--") {
				continue
			}
			if w != "scratch" {
				s.image("Dockerfile FROM", w, ln.n)
			}
			break
		}
	case "RUN":
		for _, cmd := range splitShell(m[2], langShell) {
			s.command(cmd, ln.n, consumed, 0, false)
		}
	}
}

// chef finds the chef resources that reach out: jetpack_download (a blob,
// with the project line of its block) and package resources.
func (s *scriptScanner) chef(ln logical) {
	t := strings.TrimSpace(ln.text)
	if m := chefJetpack.FindStringSubmatch(ln.text); m != nil {
		s.chefBlob = -1
		name := m[1]
		if name == "" {
			name = "{" + m[2] + "}" // a Ruby variable
		}
		if f := s.add(KindBlob, name, ln.n, false, ""); f != nil {
			s.chefBlob = len(s.c.findings) - 1
		}
		return
	}
	if s.chefBlob >= 0 && s.chefBlob < len(s.c.findings) {
		if m := chefProject.FindStringSubmatch(ln.text); m != nil {
			s.c.findings[s.chefBlob].blobProject = m[1]
		}
		if t == "end" {
			s.chefBlob = -1
		}
	}
	m := chefPackage.FindStringSubmatch(ln.text)
	if m == nil || m[2] == "" {
		return
	}
	arg := m[2]
	var names []string
	if w := chefWordArray.FindStringSubmatch(arg); w != nil {
		names = strings.Fields(w[1])
	} else if lits := chefLiteral.FindAllStringSubmatch(arg, -1); lits != nil && (arg[0] == '"' || arg[0] == '\'' || arg[0] == '[') {
		for _, l := range lits {
			names = append(names, l[1])
		}
	} else {
		names = []string{arg}
	}
	for _, n := range names {
		s.pkgName("chef "+m[1], n, ln.n)
	}
}

// anywhere finds commands inside Python or Ruby code: a string literal
// that starts with a known program is a command. A literal of several
// words ("pip install wheel") is the whole command; a literal of one word
// starts a list (["dnf", "install", "-y", pkg]) whose literals and
// identifiers (shown as {name}) are its words.
func (s *scriptScanner) anywhere(ws []word, line int, consumed *[]string) {
	for i := 0; i < len(ws); i++ {
		// "dnf install -y x" or ["dnf", …]; not "Running dnf install".
		if !ws[i].quoted || !ws[i].first || !knownProgram(cmdName(ws[i].s)) {
			continue
		}
		whole := i+1 < len(ws) && ws[i+1].quoted && !ws[i+1].first
		cmd := []word{ws[i]}
		j := i + 1
		for ; j < len(ws); j++ {
			w := ws[j]
			switch {
			case whole && (!w.quoted || w.first):
			case w.quoted:
				cmd = append(cmd, w)
				continue
			case !whole && identifier.MatchString(w.s):
				cmd = append(cmd, word{s: "{" + w.s + "}"})
				continue
			}
			break
		}
		s.command(cmd, line, consumed, 0, true)
		i = j - 1
	}
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

func knownProgram(name string) bool {
	return pkgManagers[name] != "" || isPip(name) || isPython(name) || containerTools[name] ||
		name == "git" || name == "jetpack" || name == "enroot" || name == "singularity" || name == "apptainer" ||
		name == "yum-config-manager" || name == "add-apt-repository" || name == "crb" || shells[name]
}

// pkgManagers maps package manager programs to their family.
var pkgManagers = map[string]string{
	"yum": "yum", "dnf": "yum", "dnf-3": "yum", "dnf5": "yum", "microdnf": "yum", "tdnf": "yum",
	"apt": "apt", "apt-get": "apt", "aptitude": "apt",
	"zypper": "zypper",
}

var containerTools = map[string]bool{"docker": true, "podman": true, "nerdctl": true}

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ksh": true, "zsh": true}

var pipName = regexp.MustCompile(`^pip[0-9.]*$`)
var pythonName = regexp.MustCompile(`^(python[0-9.]*|py|pypy[0-9.]*)$`)

func isPip(name string) bool    { return pipName.MatchString(name) }
func isPython(name string) bool { return pythonName.MatchString(name) }

// command dispatches one command (prefixes stripped) to its parser.
func (s *scriptScanner) command(ws []word, line int, consumed *[]string, depth int, code bool) {
	ws = stripPrefixes(ws)
	if len(ws) == 0 {
		return
	}
	name := cmdName(ws[0].s)
	args := ws[1:]
	switch {
	case pkgManagers[name] != "":
		s.pkg(name, args, line)
	case name == "yum-config-manager":
		s.configManager(name, args, line)
	case name == "crb" && len(args) > 0 && args[0].s == "enable":
		s.add(KindPackage, "crb", line, false, "crb enable turns on the CodeReady Builder repository: the nodes need a mirror of it")
	case name == "add-apt-repository":
		for _, a := range positional(args, map[string]bool{"-k": true, "--keyserver": true, "-c": true, "--component": true}) {
			if !strings.Contains(a, "://") {
				s.add(KindPackage, a, line, false, "add-apt-repository: the nodes need a mirror of this repository")
			}
		}
	case isPip(name):
		s.pip(args, line, consumed)
	case len(args) >= 2 && args[0].s == "-m" && isPip(args[1].s):
		s.pip(args[2:], line, consumed)
	case isPython(name) && len(args) > 0:
		// python3 -I -m pip install …
		for i := 0; i+1 < len(args) && strings.HasPrefix(args[i].s, "-"); i++ {
			if args[i].s == "-m" {
				if isPip(args[i+1].s) {
					s.pip(args[i+2:], line, consumed)
				}
				break
			}
		}
	case containerTools[name]:
		s.container(name, args, line)
	case name == "enroot" || name == "singularity" || name == "apptainer":
		s.containerURI(name, args, line)
	case name == "git":
		s.git(args, line, consumed, code)
	case name == "jetpack":
		s.jetpack(args, line)
	case shells[name] && depth < maxDepth && !code:
		// bash -c 'dnf install -y x'
		for i := 0; i+1 < len(args); i++ {
			if args[i].s == "-c" {
				for _, c := range splitShell(args[i+1].s, langShell) {
					s.command(c, line, consumed, depth+1, false)
				}
				break
			}
			if !strings.HasPrefix(args[i].s, "-") {
				break
			}
		}
	}
}

// positional returns the arguments that are not options, skipping the
// values of the options in valued.
func positional(args []word, valued map[string]bool) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i].s
		if a == "--" {
			for _, w := range args[i+1:] {
				out = append(out, w.s)
			}
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			k, _, has := strings.Cut(a, "=")
			if valued[k] && !has {
				i++
			}
			continue
		}
		if a == "" || onlyPunct(a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

func onlyPunct(s string) bool {
	for _, r := range s {
		if strings.ContainsRune("+=%!{}<>:", r) {
			continue
		}
		return false
	}
	return true
}

// Options that take a value, per tool family.
var (
	yumValued = map[string]bool{"-c": true, "--config": true, "--installroot": true, "--setopt": true,
		"--releasever": true, "--enablerepo": true, "--disablerepo": true, "--repo": true, "--repoid": true,
		"-x": true, "--exclude": true, "-d": true, "--debuglevel": true, "-e": true, "--errorlevel": true,
		"--rpmverbosity": true, "--downloaddir": true, "--destdir": true, "--forcearch": true, "--color": true,
		"--repofrompath": true, "--advisory": true, "--cve": true, "--bz": true}
	aptValued = map[string]bool{"-o": true, "--option": true, "-c": true, "--config-file": true,
		"-t": true, "--target-release": true, "-a": true, "--host-architecture": true}
	zypperValued = map[string]bool{"-r": true, "--repo": true, "--from": true, "-t": true, "--type": true,
		"-R": true, "--root": true, "-D": true, "--reposd-dir": true, "-C": true, "--cache-dir": true,
		"--installroot": true, "-c": true, "--config": true}
)

// pkg reads a yum/dnf/tdnf/apt/zypper command.
func (s *scriptScanner) pkg(tool string, args []word, line int) {
	family := pkgManagers[tool]
	valued := map[string]map[string]bool{"yum": yumValued, "apt": aptValued, "zypper": zypperValued}[family]
	// --enablerepo=powertools turns a repository on for this command.
	for i := 0; i < len(args); i++ {
		k, v, has := strings.Cut(args[i].s, "=")
		if k == "--enablerepo" {
			if !has && i+1 < len(args) {
				v = args[i+1].s
			}
			for _, r := range strings.Split(v, ",") {
				if r = strings.TrimSpace(r); r != "" && r != "*" {
					s.add(KindPackage, r, line, false, fmt.Sprintf("%s --enablerepo %s: the nodes need a mirror of this repository", tool, r))
				}
			}
		}
	}
	pos := positional(args, valued)
	if len(pos) == 0 {
		return
	}
	verb := strings.ToLower(pos[0])
	names := pos[1:]
	switch family {
	case "yum":
		switch verb {
		case "install", "reinstall", "localinstall", "groupinstall", "in", "install-n", "install-na", "install-nevra":
		case "group", "groups", "module":
			if len(names) == 0 || names[0] != "install" {
				return
			}
			names = names[1:]
		case "config-manager":
			s.configManager(tool+" config-manager", args, line)
			return
		default:
			return
		}
	case "apt":
		if verb != "install" && verb != "reinstall" && verb != "build-dep" {
			return
		}
	case "zypper":
		if verb != "install" && verb != "in" && verb != "source-install" && verb != "si" {
			return
		}
	}
	for _, n := range names {
		s.pkgName(tool+" "+verb, n, line)
	}
}

// pkgName records one package a package manager installs.
func (s *scriptScanner) pkgName(how, n string, line int) {
	if n == "" || onlyPunct(n) || strings.Contains(n, "://") {
		return // URLs are found as URLs
	}
	if localPackage(n) {
		if f := s.add(KindPackage, n, line, true, "local package file ("+how+"): its dependencies may still come from the package repositories"); f != nil {
			f.mayFetch = true
		}
		return
	}
	s.add(KindPackage, n, line, false, how+": from the OS package repositories (mirror them inside the air gap)")
}

func localPackage(n string) bool {
	l := strings.ToLower(n)
	for _, ext := range []string{".rpm", ".deb", ".drpm"} {
		if strings.HasSuffix(l, ext) {
			return true
		}
	}
	return false
}

// configManager reads yum-config-manager / dnf config-manager: the
// repositories it enables (--enable, --set-enabled, setopt X.enabled=1).
func (s *scriptScanner) configManager(how string, args []word, line int) {
	enable := false
	for _, a := range args {
		switch a.s {
		case "--enable", "--set-enabled", "--enablerepo":
			enable = true
		}
	}
	pos := positional(args, map[string]bool{"--add-repo": true, "--setopt": true, "--save": false, "-c": true, "--config": true, "--installroot": true})
	for _, p := range pos {
		if p == "config-manager" {
			continue
		}
		if repo, ok := strings.CutSuffix(p, ".enabled=1"); ok {
			s.add(KindPackage, repo, line, false, how+" enables repository "+repo+": the nodes need a mirror of it")
			continue
		}
		if enable && p != "setopt" && !strings.Contains(p, "=") && !strings.Contains(p, "://") {
			s.add(KindPackage, p, line, false, how+" enables repository "+p+": the nodes need a mirror of it")
		}
	}
}

var (
	pipGlobalValued = map[string]bool{"--proxy": true, "--cache-dir": true, "--log": true, "--timeout": true,
		"--retries": true, "--exists-action": true, "--cert": true, "--client-cert": true, "--python": true,
		"--trusted-host": true, "--index-url": true, "-i": true}
	pipValued = map[string]bool{"-r": true, "--requirement": true, "-c": true, "--constraint": true,
		"-e": true, "--editable": true, "-t": true, "--target": true, "--prefix": true, "--root": true,
		"-i": true, "--index-url": true, "--extra-index-url": true, "-f": true, "--find-links": true,
		"--trusted-host": true, "--src": true, "--platform": true, "--python-version": true,
		"--implementation": true, "--abi": true, "--upgrade-strategy": true, "--global-option": true,
		"--install-option": true, "--config-settings": true, "-C": true, "--no-binary": true,
		"--only-binary": true, "--progress-bar": true, "--report": true, "--cache-dir": true, "--log": true,
		"--proxy": true, "--timeout": true, "--retries": true, "--root-user-action": true, "-d": true,
		"--dest": true, "-w": true, "--wheel-dir": true, "--exists-action": true, "--cert": true,
		"--client-cert": true, "--python": true}
)

// pip reads the arguments of pip (after "pip" or "python -m pip").
func (s *scriptScanner) pip(args []word, line int, consumed *[]string) {
	// Global options before the verb.
	i := 0
	for i < len(args) && strings.HasPrefix(args[i].s, "-") {
		k, _, has := strings.Cut(args[i].s, "=")
		i++
		if pipGlobalValued[k] && !has {
			i++
		}
	}
	if i >= len(args) {
		return
	}
	verb := args[i].s
	if verb != "install" && verb != "download" && verb != "wheel" {
		return
	}
	rest := args[i+1:]
	var (
		noIndex, noDeps bool
		index           string
		names, locals   []string
		reqs            []string
	)
	for j := 0; j < len(rest); j++ {
		a := rest[j].s
		k, v, has := strings.Cut(a, "=")
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			if pipValued[k] && !has && j+1 < len(rest) {
				j++
				v = rest[j].s
			}
			switch k {
			case "--no-index":
				noIndex = true
			case "--no-deps":
				noDeps = true
			case "-i", "--index-url":
				index = v
			case "-r", "--requirement":
				reqs = append(reqs, v)
			case "-e", "--editable":
				names = append(names, v)
			}
			continue
		}
		if a == "" || onlyPunct(a) {
			continue
		}
		names = append(names, a)
	}
	from := "from PyPI (pypi.org)"
	if index != "" {
		from = "from the index " + index
	}
	for _, n := range names {
		switch {
		case vcsURL(n):
			u := n[strings.IndexByte(n, '+')+1:]
			*consumed = append(*consumed, u)
			s.gitTarget(u, line, "pip "+verb+" from git")
		case strings.Contains(n, "://"):
			// A URL: found as a URL.
		case localPip(n):
			locals = append(locals, n)
		default:
			if noIndex {
				s.add(KindPip, n, line, true, "pip "+verb+" --no-index: from local files (--find-links), no network")
			} else {
				if f := s.add(KindPip, n, line, false, "pip "+verb+": "+from+" (run a PyPI mirror, or carry wheels and use --no-index --find-links)"); f != nil {
					f.pypi = index == ""
				}
			}
		}
	}
	for _, n := range locals {
		if noIndex || noDeps {
			s.add(KindPip, n, line, true, "local package (pip "+verb+" --no-deps/--no-index): no network")
		} else {
			if f := s.add(KindPip, n, line, true, "local package: its dependencies may still come "+from+" (add --no-index --find-links DIR, or run a PyPI mirror)"); f != nil {
				f.mayFetch = true
			}
		}
	}
	for _, r := range reqs {
		if noIndex {
			s.add(KindPip, r, line, true, "requirements file, pip "+verb+" --no-index: from local files, no network")
		} else {
			if f := s.add(KindPip, r, line, false, "requirements file: every package it names comes "+from); f != nil {
				f.pypi = index == ""
			}
		}
	}
}

func vcsURL(n string) bool {
	for _, p := range []string{"git+", "hg+", "svn+", "bzr+"} {
		if strings.HasPrefix(n, p) && strings.Contains(n, "://") {
			return true
		}
	}
	return false
}

// localPip reports whether a pip argument is a local path rather than a
// project name: a path, a glob, or an archive or wheel file.
func localPip(n string) bool {
	if n == "." || n == ".." || strings.ContainsAny(n, "/\\*?") || strings.HasPrefix(n, "~") {
		return true
	}
	l := strings.ToLower(n)
	for _, ext := range []string{".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar"} {
		if strings.HasSuffix(l, ext) {
			return true
		}
	}
	return false
}

var (
	containerGlobalValued = map[string]bool{"-H": true, "--host": true, "--config": true, "-c": true,
		"--context": true, "-l": true, "--log-level": true, "--root": true, "--runroot": true,
		"--storage-driver": true, "--namespace": true, "-n": true, "--address": true, "-a": true}
	// containerBool are the flags of run/create/pull that take no value;
	// any other flag without "=" is taken to take one.
	containerBool = map[string]bool{"-d": true, "--detach": true, "-i": true, "--interactive": true,
		"-t": true, "--tty": true, "--rm": true, "--privileged": true, "--init": true, "-P": true,
		"--publish-all": true, "--read-only": true, "--no-healthcheck": true, "--oom-kill-disable": true,
		"-q": true, "--quiet": true, "-a": true, "--all-tags": true, "--disable-content-trust": true,
		"--sig-proxy": true, "--replace": true, "--tls-verify": true, "--help": true}
)

// container reads docker/podman/nerdctl pull, run and create.
func (s *scriptScanner) container(tool string, args []word, line int) {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i].s, "-") {
		k, _, has := strings.Cut(args[i].s, "=")
		i++
		if containerGlobalValued[k] && !has {
			i++
		}
	}
	if i >= len(args) {
		return
	}
	verb := args[i].s
	i++
	if (verb == "image" || verb == "container") && i < len(args) {
		verb = args[i].s
		i++
	}
	if verb != "pull" && verb != "run" && verb != "create" {
		return
	}
	for ; i < len(args); i++ {
		a := args[i].s
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			if strings.Contains(a, "=") || containerBool[a] || shortBools(a) {
				continue
			}
			i++ // a flag with its value
			continue
		}
		if a == "" || onlyPunct(a) {
			continue
		}
		s.image(tool+" "+verb, a, line)
		return
	}
}

// shortBools reports combined short boolean flags such as -it, -dit.
func shortBools(a string) bool {
	if len(a) < 3 || a[1] == '-' {
		return false
	}
	for _, c := range a[1:] {
		if !strings.ContainsRune("ditP", c) {
			return false
		}
	}
	return true
}

// containerURI reads enroot import and singularity/apptainer pull, whose
// images are URIs (docker://nvcr.io#nvidia/pytorch:24.01).
func (s *scriptScanner) containerURI(tool string, args []word, line int) {
	pos := positional(args, map[string]bool{"-o": true, "--output": true, "-a": true, "--arch": true, "--name": true})
	if len(pos) == 0 {
		return
	}
	verb := pos[0]
	switch {
	case tool == "enroot" && verb == "import":
	case tool != "enroot" && (verb == "pull" || verb == "build" || verb == "run" || verb == "exec" || verb == "shell"):
	default:
		return
	}
	for _, p := range pos[1:] {
		if strings.Contains(p, "://") {
			if strings.HasPrefix(p, "http") || strings.HasPrefix(p, "file://") {
				return
			}
			s.image(tool+" "+verb, p, line)
			return
		}
	}
}

func (s *scriptScanner) image(how, ref string, line int) {
	reg := Registry(ref)
	if local, why := localHost(stripPort(reg)); local {
		s.add(KindContainer, ref, line, true, fmt.Sprintf("%s: image from a registry at a %s: reachable without the internet", how, why))
		return
	}
	s.add(KindContainer, ref, line, false, fmt.Sprintf("%s: image pulled from %s at boot (carry it in a custom VM image or a registry inside the air gap)", how, reg))
}

// stripPort drops a ":port" from a host.
func stripPort(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

// Registry returns the registry host of an image reference
// ("nvcr.io/nvidia/k8s/dcgm-exporter:3.3" → "nvcr.io", "ubuntu" →
// "docker.io", "docker://nvcr.io#nvidia/pytorch" → "nvcr.io").
func Registry(ref string) string {
	if i := strings.Index(ref, "://"); i >= 0 {
		ref = ref[i+3:]
	}
	if h, _, ok := strings.Cut(ref, "#"); ok {
		return h
	}
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

var gitGlobalValued = map[string]bool{"-C": true, "-c": true, "--git-dir": true, "--work-tree": true,
	"--namespace": true, "--exec-path": false, "--config-env": true}

var gitCloneValued = map[string]bool{"-b": true, "--branch": true, "--depth": true, "-o": true,
	"--origin": true, "--reference": true, "--reference-if-able": true, "-c": true, "--config": true,
	"--filter": true, "-j": true, "--jobs": true, "--separate-git-dir": true, "-u": true,
	"--upload-pack": true, "--template": true, "--shallow-since": true, "--shallow-exclude": true,
	"--server-option": true, "--bundle-uri": true, "--revision": true}

// repoLike reports whether s looks like a repository: a URL, scp-like
// user@host:path, a path, or a name ending in .git.
func repoLike(s string) bool {
	return strings.Contains(s, "://") || strings.HasSuffix(s, ".git") || localPath(s) ||
		strings.Contains(s, "@") && strings.Contains(s, ":") || strings.HasPrefix(s, "{")
}

// git reads git clone (and git submodule add) of a repository; code says
// the command came from a string in Python or Ruby code.
func (s *scriptScanner) git(args []word, line int, consumed *[]string, code bool) {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i].s, "-") {
		k, _, has := strings.Cut(args[i].s, "=")
		i++
		if gitGlobalValued[k] && !has {
			i++
		}
	}
	if i >= len(args) {
		return
	}
	verb := args[i].s
	rest := args[i+1:]
	if verb == "submodule" && len(rest) > 0 && rest[0].s == "add" {
		rest = rest[1:]
	} else if verb != "clone" {
		return
	}
	pos := positional(rest, gitCloneValued)
	if len(pos) == 0 || code && !repoLike(pos[0]) {
		return // in code, "git clone failed" is a message
	}
	*consumed = append(*consumed, pos[0])
	s.gitTarget(pos[0], line, "git "+verb)
}

func (s *scriptScanner) gitTarget(repo string, line int, how string) {
	if localPath(repo) || strings.HasPrefix(repo, "file://") {
		s.add(KindGit, repo, line, true, how+" of a local repository: no network")
		return
	}
	s.add(KindGit, repo, line, false, fmt.Sprintf("%s from %s at boot (mirror the repository inside the air gap, or carry it in a blob)", how, hostOf(repo)))
}

func localPath(p string) bool {
	return strings.HasPrefix(p, "/") || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "~")
}

// jetpack reads "jetpack download [--project P] NAME [DEST]".
func (s *scriptScanner) jetpack(args []word, line int) {
	if len(args) == 0 || args[0].s != "download" {
		return
	}
	project := ""
	var pos []string
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i].s
		k, v, has := strings.Cut(a, "=")
		if k == "--project" {
			if !has && i+1 < len(rest) {
				i++
				v = rest[i].s
			}
			project = v
			continue
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			continue
		}
		if a != "" && !onlyPunct(a) {
			pos = append(pos, a)
		}
	}
	if len(pos) == 0 {
		return
	}
	if f := s.add(KindBlob, pos[0], line, false, ""); f != nil {
		f.blobProject = project
	}
}

var urlRe = regexp.MustCompile(`(?i)\b(?:https?|ftp)://[^\s"'<>\x60|\\;]+`)

// urls records every URL of a line that no command claimed.
func (s *scriptScanner) urls(ln logical, consumed []string) {
	for _, u := range urlRe.FindAllString(ln.text, -1) {
		u = trimURL(u)
		if len(u) < len("http://x") {
			continue
		}
		claimed := false
		for _, c := range consumed {
			if strings.Contains(c, u) || strings.Contains(u, c) {
				claimed = true
				break
			}
		}
		if claimed {
			continue
		}
		host := hostOf(u)
		if local, why := localHost(host); local {
			s.add(KindURL, u, ln.n, true, why+": reachable without the internet")
			continue
		}
		d := urlContext(ln.text, s.lang)
		if strings.ContainsAny(host, "${}%") {
			d += "; its host is a variable: make sure it resolves inside the air gap"
		}
		s.add(KindURL, u, ln.n, false, d)
	}
}

// trimURL drops the punctuation that ends a sentence or closes a bracket
// around a URL, keeping the brackets of ${VAR}.
func trimURL(u string) string {
	for len(u) > 0 {
		c := u[len(u)-1]
		switch {
		case strings.IndexByte(".,:!?)]'\"", c) >= 0:
			u = u[:len(u)-1]
		case c == '}' && strings.Count(u, "}") > strings.Count(u, "{"):
			u = u[:len(u)-1]
		default:
			return u
		}
	}
	return u
}

// hostOf returns the host of a URL or git remote ("git@github.com:o/r" →
// "github.com"), without a port.
func hostOf(u string) string {
	rest := u
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	} else if at := strings.IndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
		if c := strings.IndexByte(rest, ':'); c >= 0 {
			rest = rest[:c]
		}
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	if h, _, err := net.SplitHostPort(rest); err == nil {
		return strings.ToLower(h)
	}
	return strings.ToLower(strings.Trim(rest, "[]"))
}

// localHost reports hosts a node reaches without the internet: loopback
// and link-local addresses (the Azure metadata service, 169.254.169.254).
func localHost(h string) (bool, string) {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true, "loopback address"
	}
	ip := net.ParseIP(h)
	switch {
	case ip == nil:
		return false, ""
	case ip.IsLoopback():
		return true, "loopback address"
	case ip.IsLinkLocalUnicast():
		return true, "link-local address (Azure metadata service)"
	}
	return false, ""
}

var debLine = regexp.MustCompile(`(^|[\s"'])deb(-src)?\s`)

// urlContext says how a line uses its URL.
func urlContext(line string, lg lang) string {
	l := strings.ToLower(line)
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(l, x) {
				return true
			}
		}
		return false
	}
	switch {
	case has("baseurl", "mirrorlist", "metalink"):
		return "yum/dnf repository: mirror it inside the air gap and point the repo file there"
	case has("gpgkey"):
		return "repository signing key: carry it or mirror it with the repository"
	case debLine.MatchString(l):
		return "apt repository (deb line): mirror it inside the air gap"
	case has("add-repo", "addrepo", "add-apt-repository"):
		return "package repository added at boot: mirror it inside the air gap"
	case has("curl"):
		return "downloaded with curl at boot"
	case has("wget"):
		return "downloaded with wget at boot"
	case has("invoke-webrequest", "iwr ", "invoke-restmethod", "irm ", "start-bitstransfer", "webclient", "downloadfile"):
		return "downloaded with PowerShell at boot"
	case has("remote_file"):
		return "downloaded by chef remote_file at boot"
	case has("urlopen", "urllib", "requests.", "urlretrieve"):
		return "fetched by Python code at boot"
	case has("pip"):
		return "used by pip at boot"
	case has("rpm ", "yum", "dnf", "zypper", "apt"):
		return "fetched by the package manager at boot"
	case lg == langRepo:
		return "repository file entry"
	}
	return "URL in a node-side file: nodes may fetch it at boot"
}
