package scan

import (
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
