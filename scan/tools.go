package scan

import (
	"fmt"
	"net"
	"strings"
)

// Containers, git and jetpack downloads.

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
