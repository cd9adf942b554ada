package scan

import (
	"fmt"
	"strings"
)

// Package installs: yum/dnf/apt/zypper and pip.

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
