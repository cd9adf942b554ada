// Package syncjob is ccmirror's scheduled mirror job (`ccmirror sync`): it
// keeps a configured set of CycleCloud project versions mirrored as signed
// bundles in one output folder, records every bundle in a signed
// index.json, notices releases whose assets were replaced in place on
// GitHub, and optionally publishes new bundles and the index to Azure Blob
// Storage. It is meant to run unattended from cron or a systemd timer.
package syncjob

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ccmirror/ccmirror/internal/regfile"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/transport/blob"
)

// ErrConfig marks a config file that cannot be used: unreadable, not YAML,
// an unknown or missing key, a bad value. The CLI maps it to the usage exit
// code: the user must fix the file.
var ErrConfig = errors.New("bad config")

// configError is a config problem whose message stands alone and that
// matches ErrConfig (and its cause, if any).
type configError struct {
	msg   string
	cause error
}

func (e *configError) Error() string { return e.msg }

func (e *configError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrConfig}
	}
	return []error{ErrConfig, e.cause}
}

// MaxNewest bounds N in a "newest:N" version policy.
const MaxNewest = 100

// maxConfigSize bounds the config file read.
const maxConfigSize = 1 << 20

// Config is a parsed mirror job config (see SPEC.md, "The mirror job's
// config").
type Config struct {
	// Path is the config file, as given.
	Path string
	// GitHubURL is the API base; "" means https://api.github.com/.
	GitHubURL string
	// TokenEnv names the environment variable holding the GitHub token;
	// DefaultTokenEnv when the file does not say.
	TokenEnv string
	// SignKey is the OpenSSH private key (or "agent:…", or a .pub of an
	// agent key) the bundles and the index are signed with. A relative path
	// in the file is made absolute against the file's folder.
	SignKey string
	// Output is the folder bundles, index.json and index.json.sig are
	// written to, made absolute like SignKey.
	Output string
	// Publish is the Azure Blob Storage container (or prefix) URL new
	// bundles and the index are uploaded to; "" means no publishing.
	Publish string
	// Cache is the download cache folder; "" means the user cache folder.
	Cache string
	// Concurrency bounds parallel downloads; 0 means mirror's default.
	Concurrency int
	// Projects are the repositories to mirror, in file order.
	Projects []Project
}

// DefaultTokenEnv is the variable read for the GitHub token when the config
// has no token_env.
const DefaultTokenEnv = "GITHUB_TOKEN"

// Project is one entry of the config's projects list.
type Project struct {
	// Ref is the repository; its Version is always "".
	Ref mirror.Ref
	// Text is the ref as written in the file.
	Text string
	// Line is where the entry starts in the file.
	Line int
	// Versions are the version policies, in file order.
	Versions []Policy
}

// PolicyKind tells how a Policy picks releases.
type PolicyKind int

// The version policies.
const (
	// Pinned is one release tag.
	Pinned PolicyKind = iota
	// Latest is the repository's highest version (mirror.LatestRelease),
	// whatever GitHub marks latest.
	Latest
	// Newest is the N highest versions (mirror.NewestReleases).
	Newest
)

// Policy is one entry of a project's versions list.
type Policy struct {
	Kind PolicyKind
	// Tag is the release tag of a Pinned policy.
	Tag string
	// N is the count of a Newest policy.
	N int
}

// String returns the policy as written in a config: "3.0.12", "latest",
// "newest:3".
func (p Policy) String() string {
	switch p.Kind {
	case Latest:
		return "latest"
	case Newest:
		return "newest:" + strconv.Itoa(p.N)
	}
	return p.Tag
}

// ParsePolicy parses one versions entry: a release tag, "latest" or
// "newest:N" (1 <= N <= MaxNewest).
func ParsePolicy(s string) (Policy, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Policy{}, errors.New("empty version")
	case strings.EqualFold(s, "latest"):
		return Policy{Kind: Latest}, nil
	}
	if word, arg, ok := strings.Cut(s, ":"); ok {
		if !strings.EqualFold(word, "newest") {
			return Policy{}, fmt.Errorf("bad version policy %q: want a release tag, \"latest\" or \"newest:N\"", s)
		}
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 || n > MaxNewest || strings.HasPrefix(arg, "+") {
			return Policy{}, fmt.Errorf("bad version policy %q: N must be a whole number from 1 to %d", s, MaxNewest)
		}
		return Policy{Kind: Newest, N: n}, nil
	}
	if strings.EqualFold(s, "newest") {
		return Policy{}, fmt.Errorf("bad version policy %q: say how many, e.g. \"newest:3\"", s)
	}
	// A tag must be one mirror accepts in a ref.
	if _, err := mirror.ParseRef("o/r@" + s); err != nil {
		return Policy{}, fmt.Errorf("bad version policy %q: not a usable release tag", s)
	}
	return Policy{Kind: Pinned, Tag: s}, nil
}

// LoadConfig reads and parses the config file at path.
func LoadConfig(path string) (*Config, error) {
	// regfile never blocks on a FIFO or device given as the config.
	b, err := regfile.ReadFile(path, maxConfigSize, regfile.Options{})
	if err != nil {
		return nil, &configError{msg: "config: " + err.Error(), cause: err}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &configError{msg: fmt.Sprintf("config %s: %v", path, err), cause: err}
	}
	return ParseConfig(b, path, filepath.Dir(abs))
}

// ParseConfig parses config file content. name is used in messages
// ("mirror.yaml:7: unknown key \"projets\""); relative paths in the file
// are resolved against dir. Every error matches ErrConfig.
func ParseConfig(data []byte, name, dir string) (*Config, error) {
	p := &parser{name: name}
	c, err := p.parse(data, dir)
	if err != nil {
		return nil, &configError{msg: err.Error()}
	}
	return c, nil
}

type parser struct{ name string }

// errorf returns an error located at line of the file.
func (p *parser) errorf(line int, format string, args ...any) error {
	if line <= 0 {
		return fmt.Errorf("%s: %s", p.name, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%s:%d: %s", p.name, line, fmt.Sprintf(format, args...))
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError restates a YAML syntax error as "FILE:LINE: message".
func (p *parser) yamlError(err error) error {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return p.errorf(n, "%s", m[2])
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.Contains(msg, "mapping values are not allowed") {
		msg += ` (quote a value that holds ": " or ends in ":", like sign_key: "agent:")`
	}
	return p.errorf(0, "%s", msg)
}

// The keys a config may hold.
var (
	topKeys     = []string{"github_url", "token_env", "sign_key", "output", "publish", "cache", "concurrency", "projects"}
	projectKeys = []string{"ref", "versions"}
)

func (p *parser) parse(data []byte, dir string) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.errorf(0, "the file is empty; it needs at least output, sign_key and projects")
		}
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, p.errorf(extra.Line, "a second YAML document; the config is one document")
	} else if !errors.Is(err, io.EOF) {
		return nil, p.yamlError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.errorf(doc.Line, "not a YAML mapping")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root.Line, "the config must be a mapping of keys (output:, projects:, ...)")
	}
	fields, err := p.mapping(root, topKeys, "")
	if err != nil {
		return nil, err
	}
	c := &Config{Path: p.name, TokenEnv: DefaultTokenEnv}
	for _, k := range []string{"output", "sign_key", "projects"} {
		if fields[k] == nil {
			return nil, p.errorf(root.Line, "missing required key %q", k)
		}
	}
	str := func(key string) (string, int, error) {
		n := fields[key]
		if n == nil {
			return "", 0, nil
		}
		s, err := p.scalar(n, key)
		return s, n.Line, err
	}
	var line int
	if c.GitHubURL, line, err = str("github_url"); err != nil {
		return nil, err
	} else if c.GitHubURL != "" {
		if !strings.HasPrefix(c.GitHubURL, "https://") && !strings.HasPrefix(c.GitHubURL, "http://") {
			return nil, p.errorf(line, "github_url %q: want https://HOST/api/v3/ (or https://api.github.com/)", c.GitHubURL)
		}
	}
	if fields["token_env"] != nil {
		if c.TokenEnv, line, err = str("token_env"); err != nil {
			return nil, err
		}
		if !envNameRe.MatchString(c.TokenEnv) {
			return nil, p.errorf(line, "token_env %q: want the name of an environment variable, like GITHUB_TOKEN (not the token itself)", c.TokenEnv)
		}
	}
	if c.SignKey, _, err = str("sign_key"); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(c.SignKey, "agent:") {
		c.SignKey = resolvePath(dir, c.SignKey)
	}
	if c.Output, _, err = str("output"); err != nil {
		return nil, err
	}
	c.Output = resolvePath(dir, c.Output)
	if c.Cache, _, err = str("cache"); err != nil {
		return nil, err
	} else if c.Cache != "" {
		c.Cache = resolvePath(dir, c.Cache)
	}
	if c.Publish, line, err = str("publish"); err != nil {
		return nil, err
	} else if c.Publish != "" {
		if _, err := publishLocation(c.Publish); err != nil {
			return nil, p.errorf(line, "publish: %v", err)
		}
	}
	if n := fields["concurrency"]; n != nil {
		s, err := p.scalar(n, "concurrency")
		if err != nil {
			return nil, err
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 64 {
			return nil, p.errorf(n.Line, "concurrency %q: want a whole number from 1 to 64", s)
		}
		c.Concurrency = v
	}
	if c.Projects, err = p.projects(fields["projects"]); err != nil {
		return nil, err
	}
	return c, nil
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func resolvePath(dir, p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// mapping checks a mapping node's keys against allowed and returns each
// value by key. where names the enclosing entry in messages.
func (p *parser) mapping(n *yaml.Node, allowed []string, where string) (map[string]*yaml.Node, error) {
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, p.errorf(k.Line, "a key must be a plain word%s", where)
		}
		known := false
		for _, a := range allowed {
			if k.Value == a {
				known = true
			}
		}
		if !known {
			return nil, p.errorf(k.Line, "unknown key %q%s (known keys: %s)", k.Value, where, strings.Join(allowed, ", "))
		}
		if prev := out[k.Value]; prev != nil {
			return nil, p.errorf(k.Line, "key %q%s given twice", k.Value, where)
		}
		if v.Kind == yaml.AliasNode {
			return nil, p.errorf(v.Line, "%s: YAML aliases are not supported here", k.Value)
		}
		out[k.Value] = v
	}
	return out, nil
}

// scalar returns a non-empty scalar value.
func (p *parser) scalar(n *yaml.Node, key string) (string, error) {
	switch {
	case n.Kind == yaml.AliasNode:
		return "", p.errorf(n.Line, "%s: YAML aliases are not supported here", key)
	case n.Kind != yaml.ScalarNode:
		return "", p.errorf(n.Line, "%s: want a single value, not a list or mapping", key)
	case n.Tag == "!!null" || strings.TrimSpace(n.Value) == "":
		return "", p.errorf(n.Line, "%s: needs a value", key)
	}
	return strings.TrimSpace(n.Value), nil
}

func (p *parser) projects(n *yaml.Node) ([]Project, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errorf(n.Line, "projects: want a list of entries with ref: and versions:")
	}
	if len(n.Content) == 0 {
		return nil, p.errorf(n.Line, "projects: the list is empty; name at least one project")
	}
	var out []Project
	seen := map[string]int{}
	for _, e := range n.Content {
		if e.Kind != yaml.MappingNode {
			return nil, p.errorf(e.Line, "projects: each entry is a mapping with ref: and versions:")
		}
		f, err := p.mapping(e, projectKeys, " in a projects entry")
		if err != nil {
			return nil, err
		}
		if f["ref"] == nil {
			return nil, p.errorf(e.Line, "projects entry: missing required key \"ref\"")
		}
		if f["versions"] == nil {
			return nil, p.errorf(e.Line, "projects entry: missing required key \"versions\"")
		}
		text, err := p.scalar(f["ref"], "ref")
		if err != nil {
			return nil, err
		}
		rl := f["ref"].Line
		ref, err := mirror.ParseRef(text)
		if err != nil {
			return nil, p.errorf(rl, "%v", err)
		}
		if ref.Version != "" || strings.Contains(text, "@") || strings.Contains(text, "/releases/") || strings.HasSuffix(text, "/releases") {
			return nil, p.errorf(rl, "ref %q names a version; give the repository only and list versions under versions:", text)
		}
		key := strings.ToLower(ref.Repository())
		if prev, ok := seen[key]; ok {
			return nil, p.errorf(rl, "project %s is already listed at line %d; put all its versions in one entry", ref.Repository(), prev)
		}
		seen[key] = rl
		proj := Project{Ref: ref, Text: text, Line: e.Line}
		vn := f["versions"]
		var items []*yaml.Node
		switch vn.Kind {
		case yaml.SequenceNode:
			items = vn.Content
		case yaml.ScalarNode:
			items = []*yaml.Node{vn}
		default:
			return nil, p.errorf(vn.Line, "versions: want a list like [\"3.0.12\", \"latest\", \"newest:2\"]")
		}
		if len(items) == 0 {
			return nil, p.errorf(vn.Line, "versions: the list is empty; give tags, \"latest\" or \"newest:N\"")
		}
		for _, it := range items {
			s, err := p.scalar(it, "versions")
			if err != nil {
				return nil, err
			}
			pol, err := ParsePolicy(s)
			if err != nil {
				return nil, p.errorf(it.Line, "%v", err)
			}
			proj.Versions = append(proj.Versions, pol)
		}
		out = append(out, proj)
	}
	return out, nil
}

// publishLocation parses a publish URL as a container or a prefix: a URL
// naming a blob path is taken as the folder of that name.
func publishLocation(s string) (*blob.Location, error) {
	loc, err := blob.ParseURL(s)
	if err != nil {
		return nil, err
	}
	if !loc.IsPrefix() {
		loc.Path += "/"
	}
	return loc, nil
}
