package mirror

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// KnownProjects are the short names ParseRef accepts for the Azure CycleCloud
// project repositories: NAME stands for Azure/cyclecloud-NAME.
var KnownProjects = []string{"slurm", "pbspro", "gridengine", "lsf", "symphony", "hpcpack", "healthagent", "monitoring"}

// Latest is the version word meaning "the repository's latest release".
const Latest = "latest"

// Ref names a release of a GitHub repository: what the user asked to fetch.
type Ref struct {
	Owner, Repo string
	// Version is a release tag; "" or "latest" means the latest release.
	Version string
}

// IsLatest reports whether r asks for the repository's latest release.
func (r Ref) IsLatest() bool { return r.Version == "" || strings.EqualFold(r.Version, Latest) }

// Repository returns "OWNER/REPO".
func (r Ref) Repository() string { return r.Owner + "/" + r.Repo }

// Name returns the short name when r is a known Azure CycleCloud project
// ("slurm"), else "OWNER/REPO". It is what messages call the project before
// its project.ini has been read.
func (r Ref) Name() string {
	if r.Owner == "Azure" {
		for _, k := range KnownProjects {
			if r.Repo == "cyclecloud-"+k {
				return k
			}
		}
	}
	return r.Repository()
}

// String returns the ref in NAME@VERSION form, "slurm@2.5.0" or
// "Azure/cyclecloud-slurm@latest" style, parseable by ParseRef.
func (r Ref) String() string {
	v := r.Version
	if r.IsLatest() {
		v = Latest
	}
	return r.Name() + "@" + v
}

var (
	ownerRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$`)
	repoRe  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
)

// ParseRef parses a REF as the fetch command takes it:
//
//	NAME[@VERSION]          a known project name (slurm, pbspro, ...) for Azure/cyclecloud-NAME
//	OWNER/REPO[@VERSION]    any repository
//	https://github.com/OWNER/REPO/releases/VERSION
//	https://github.com/OWNER/REPO/releases/tag/VERSION
//
// The URL forms are what CycleCloud records as a project's Url; any host is
// accepted (GitHub Enterprise), the API is chosen separately. VERSION is a
// tag or "latest", the default.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, errors.New("empty ref")
	}
	if strings.HasPrefix(s, "github.com/") {
		s = "https://" + s
	}
	var (
		r   Ref
		err error
	)
	if strings.Contains(s, "://") {
		r, err = parseRefURL(s)
	} else {
		r, err = parseRefShort(s)
	}
	if err != nil {
		return Ref{}, fmt.Errorf("ref %q: %w", s, err)
	}
	return r, nil
}

func parseRefShort(s string) (Ref, error) {
	name, version, hasVersion := strings.Cut(s, "@")
	if hasVersion {
		if err := checkVersion(version); err != nil {
			return Ref{}, err
		}
	}
	var r Ref
	if owner, repo, ok := strings.Cut(name, "/"); ok {
		if err := checkRepo(owner, repo); err != nil {
			return Ref{}, err
		}
		r = Ref{Owner: owner, Repo: repo}
	} else {
		k := strings.ToLower(strings.TrimPrefix(strings.ToLower(name), "cyclecloud-"))
		if !isKnown(k) {
			return Ref{}, fmt.Errorf("unknown project name %q (known: %s; or use OWNER/REPO)", name, strings.Join(KnownProjects, ", "))
		}
		r = Ref{Owner: "Azure", Repo: "cyclecloud-" + k}
	}
	r.Version = normVersion(version)
	return r, nil
}

func parseRefURL(s string) (Ref, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Ref{}, fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return Ref{}, fmt.Errorf("URL scheme %q, want https", u.Scheme)
	}
	if u.Host == "" {
		return Ref{}, errors.New("URL has no host")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 {
		return Ref{}, errors.New("want https://HOST/OWNER/REPO/releases/[tag/]VERSION")
	}
	r := Ref{Owner: parts[0], Repo: strings.TrimSuffix(parts[1], ".git")}
	if err := checkRepo(r.Owner, r.Repo); err != nil {
		return Ref{}, err
	}
	rest := parts[2:]
	switch {
	case len(rest) == 0:
		// https://github.com/OWNER/REPO: the latest release.
	case rest[0] != "releases":
		return Ref{}, fmt.Errorf("path %q is not a release URL (want /OWNER/REPO/releases/[tag/]VERSION)", u.Path)
	case len(rest) == 1:
		// .../releases: the latest release.
	case rest[1] == "tag":
		if len(rest) == 2 {
			return Ref{}, errors.New("release URL names no tag")
		}
		r.Version = strings.Join(rest[2:], "/")
	default:
		r.Version = strings.Join(rest[1:], "/")
	}
	if r.Version != "" {
		if err := checkVersion(r.Version); err != nil {
			return Ref{}, err
		}
	}
	r.Version = normVersion(r.Version)
	return r, nil
}

func isKnown(name string) bool {
	for _, k := range KnownProjects {
		if k == name {
			return true
		}
	}
	return false
}

func normVersion(v string) string {
	if strings.EqualFold(v, Latest) {
		return ""
	}
	return v
}

func checkRepo(owner, repo string) error {
	if !ownerRe.MatchString(owner) {
		return fmt.Errorf("invalid repository owner %q", owner)
	}
	if !repoRe.MatchString(repo) || repo == "." || repo == ".." {
		return fmt.Errorf("invalid repository name %q", repo)
	}
	return nil
}

// checkVersion applies git's rules for tag names (git check-ref-format),
// which keeps every version safe to put in a URL path.
func checkVersion(v string) error {
	bad := func(why string) error { return fmt.Errorf("invalid version %q: %s", v, why) }
	switch {
	case v == "":
		return bad("empty")
	case len(v) > 255:
		return bad("too long")
	case strings.HasPrefix(v, "-"), strings.HasPrefix(v, "/"), strings.HasPrefix(v, "."):
		return bad("bad first character")
	case strings.HasSuffix(v, "/"), strings.HasSuffix(v, "."), strings.HasSuffix(v, ".lock"):
		return bad("bad ending")
	case strings.Contains(v, ".."), strings.Contains(v, "//"), strings.Contains(v, "@{"), strings.Contains(v, "/."):
		return bad("contains a forbidden sequence")
	}
	for _, c := range v {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("~^:?*[\\", c) {
			return bad(fmt.Sprintf("contains %q", c))
		}
	}
	return nil
}
