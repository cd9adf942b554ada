package syncjob

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

const goodConfig = `# the mirror job
github_url: https://ghe.example.com/api/v3/
token_env: GHE_TOKEN
sign_key: keys/signing_key
output: /srv/ccmirror/bundles
publish: https://acct.blob.core.windows.net/ccmirror
cache: cache
concurrency: 3
projects:
  - ref: slurm
    versions: ["3.0.12", "latest"]
  - ref: Azure/cyclecloud-monitoring
    versions: [latest]
  - ref: https://github.com/Azure/cyclecloud-pbspro
    versions:
      - newest:2
      - 2.0.25
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(goodConfig), "mirror.yaml", "/etc/ccmirror")
	if err != nil {
		t.Fatal(err)
	}
	if c.GitHubURL != "https://ghe.example.com/api/v3/" || c.TokenEnv != "GHE_TOKEN" || c.Concurrency != 3 {
		t.Errorf("config = %+v", c)
	}
	if c.SignKey != "/etc/ccmirror/keys/signing_key" || c.Cache != "/etc/ccmirror/cache" || c.Output != "/srv/ccmirror/bundles" {
		t.Errorf("paths not resolved against the config folder: sign_key %s cache %s output %s", c.SignKey, c.Cache, c.Output)
	}
	want := []struct {
		repo     string
		versions []string
		line     int
	}{
		{"Azure/cyclecloud-slurm", []string{"3.0.12", "latest"}, 10},
		{"Azure/cyclecloud-monitoring", []string{"latest"}, 12},
		{"Azure/cyclecloud-pbspro", []string{"newest:2", "2.0.25"}, 14},
	}
	if len(c.Projects) != len(want) {
		t.Fatalf("%d projects, want %d", len(c.Projects), len(want))
	}
	for i, w := range want {
		p := c.Projects[i]
		var vs []string
		for _, v := range p.Versions {
			vs = append(vs, v.String())
		}
		if p.Ref.Repository() != w.repo || !slices.Equal(vs, w.versions) || p.Line != w.line || p.Ref.Version != "" {
			t.Errorf("project %d = %s %v line %d, want %s %v line %d", i, p.Ref.Repository(), vs, p.Line, w.repo, w.versions, w.line)
		}
	}
	if c.Projects[2].Versions[0].Kind != Newest || c.Projects[2].Versions[0].N != 2 || c.Projects[2].Versions[1].Kind != Pinned {
		t.Errorf("policies = %+v", c.Projects[2].Versions)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte("sign_key: \"agent:\"\noutput: out\nprojects:\n  - {ref: slurm, versions: latest}\n"), "m.yaml", "/srv")
	if err != nil {
		t.Fatal(err)
	}
	if c.SignKey != "agent:" || c.Output != "/srv/out" || c.TokenEnv != DefaultTokenEnv || c.GitHubURL != "" || c.Publish != "" {
		t.Errorf("config = %+v", c)
	}
	if len(c.Projects[0].Versions) != 1 || c.Projects[0].Versions[0].Kind != Latest {
		t.Errorf("versions: latest = %+v", c.Projects[0].Versions)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const head = "sign_key: k\noutput: out\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top key", head + "projects:\n  - ref: slurm\n    versions: [latest]\n\n\nprojets: []\n",
			`mirror.yaml:8: unknown key "projets"`},
		{"unknown project key", head + "projects:\n  - ref: slurm\n    version: [latest]\n",
			`mirror.yaml:5: unknown key "version" in a projects entry`},
		{"missing output", "sign_key: k\nprojects:\n  - ref: slurm\n    versions: [latest]\n",
			`mirror.yaml:1: missing required key "output"`},
		{"missing sign_key", "output: o\nprojects:\n  - ref: slurm\n    versions: [latest]\n",
			`mirror.yaml:1: missing required key "sign_key"`},
		{"missing projects", head, `mirror.yaml:1: missing required key "projects"`},
		{"missing versions", head + "projects:\n  - ref: slurm\n", `mirror.yaml:4: projects entry: missing required key "versions"`},
		{"missing ref", head + "projects:\n  - versions: [latest]\n", `mirror.yaml:4: projects entry: missing required key "ref"`},
		{"ref with version", head + "projects:\n  - ref: slurm@3.0.12\n    versions: [latest]\n",
			`mirror.yaml:4: ref "slurm@3.0.12" names a version`},
		{"ref with latest", head + "projects:\n  - ref: slurm@latest\n    versions: [latest]\n",
			`mirror.yaml:4: ref "slurm@latest" names a version`},
		{"release URL ref", head + "projects:\n  - ref: https://github.com/Azure/cyclecloud-slurm/releases/tag/3.0.12\n    versions: [latest]\n",
			`mirror.yaml:4: ref "https://github.com/Azure/cyclecloud-slurm/releases/tag/3.0.12" names a version`},
		{"unknown project name", head + "projects:\n  - ref: slurmm\n    versions: [latest]\n",
			`mirror.yaml:4: ref "slurmm": unknown project name`},
		{"newest zero", head + "projects:\n  - ref: slurm\n    versions: [\"newest:0\"]\n",
			`mirror.yaml:5: bad version policy "newest:0": N must be a whole number from 1 to 100`},
		{"newest word", head + "projects:\n  - ref: slurm\n    versions:\n      - latest\n      - newest:many\n",
			`mirror.yaml:7: bad version policy "newest:many"`},
		{"newest bare", head + "projects:\n  - ref: slurm\n    versions: [newest]\n", `mirror.yaml:5: bad version policy "newest": say how many`},
		{"other policy", head + "projects:\n  - ref: slurm\n    versions: [\"oldest:2\"]\n", `mirror.yaml:5: bad version policy "oldest:2"`},
		{"bad tag", head + "projects:\n  - ref: slurm\n    versions: [\"3..0\"]\n", `mirror.yaml:5: bad version policy "3..0": not a usable release tag`},
		{"empty versions", head + "projects:\n  - ref: slurm\n    versions: []\n", `mirror.yaml:5: versions: the list is empty`},
		{"empty projects", head + "projects: []\n", `mirror.yaml:3: projects: the list is empty`},
		{"projects mapping", head + "projects:\n  slurm: latest\n", `mirror.yaml:4: projects: want a list`},
		{"duplicate project", head + "projects:\n  - ref: slurm\n    versions: [latest]\n  - ref: Azure/cyclecloud-slurm\n    versions: [\"3.0.12\"]\n",
			`mirror.yaml:6: project Azure/cyclecloud-slurm is already listed at line 4`},
		{"duplicate key", head + "output: again\nprojects:\n  - ref: slurm\n    versions: [latest]\n", `mirror.yaml:3: key "output" given twice`},
		{"null value", "sign_key:\noutput: o\nprojects:\n  - ref: slurm\n    versions: [latest]\n", `mirror.yaml:1: sign_key: needs a value`},
		{"list for a string", head + "github_url: [a]\nprojects:\n  - ref: slurm\n    versions: [latest]\n", `mirror.yaml:3: github_url: want a single value`},
		{"bad github_url", head + "github_url: api.github.com\nprojects:\n  - ref: slurm\n    versions: [latest]\n", `mirror.yaml:3: github_url "api.github.com"`},
		{"token in token_env", head + "token_env: ghp_abc-123\nprojects:\n  - ref: slurm\n    versions: [latest]\n", `mirror.yaml:3: token_env "ghp_abc-123": want the name of an environment variable`},
		{"bad publish", head + "publish: ftp://x/y\nprojects:\n  - ref: slurm\n    versions: [latest]\n", `mirror.yaml:3: publish: blob URL ftp://x/y`},
		{"bad concurrency", head + "concurrency: 0\nprojects:\n  - ref: slurm\n    versions: [latest]\n", `mirror.yaml:3: concurrency "0"`},
		{"alias", head + "x: &a 1\nprojects:\n  - ref: slurm\n    versions: [latest]\n", `mirror.yaml:3: unknown key "x"`},
		{"alias value", head + "projects:\n  - ref: &r slurm\n    versions: [latest]\n  - ref: *r\n    versions: [latest]\n", `mirror.yaml:6: ref: YAML aliases are not supported`},
		{"syntax", head + "projects:\n  - ref: slurm\n   versions: [latest]\n", `mirror.yaml:3: did not find expected`},
		{"tabs", "sign_key: k\n\toutput: o\n", `mirror.yaml:2: `},
		{"not a mapping", "- a\n- b\n", `mirror.yaml:1: the config must be a mapping`},
		{"empty", "", `mirror.yaml: the file is empty`},
		{"unquoted agent:", "sign_key: agent:\n", `mirror.yaml: mapping values are not allowed in this context (quote a value`},
		{"two documents", head + "projects:\n  - ref: slurm\n    versions: [latest]\n---\noutput: x\n", `mirror.yaml:6: a second YAML document`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), "mirror.yaml", "/etc")
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error does not match ErrConfig: %v", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant prefix %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "etc")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "mirror.yaml")
	if err := os.WriteFile(path, []byte("sign_key: ../key\noutput: bundles\nprojects:\n  - ref: slurm\n    versions: [latest]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // the working folder must not matter
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.SignKey != filepath.Join(dir, "key") || c.Output != filepath.Join(sub, "bundles") {
		t.Errorf("sign_key %s output %s, want them next to %s", c.SignKey, c.Output, path)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); !errors.Is(err, ErrConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in   string
		want Policy
		err  bool
	}{
		{"3.0.12", Policy{Kind: Pinned, Tag: "3.0.12"}, false},
		{"v2.1.0-rc1", Policy{Kind: Pinned, Tag: "v2.1.0-rc1"}, false},
		{"latest", Policy{Kind: Latest}, false},
		{"LATEST", Policy{Kind: Latest}, false},
		{"newest:1", Policy{Kind: Newest, N: 1}, false},
		{"newest:100", Policy{Kind: Newest, N: 100}, false},
		{"newest:101", Policy{}, true},
		{"newest:-2", Policy{}, true},
		{"newest:+2", Policy{}, true},
		{"newest:", Policy{}, true},
		{"", Policy{}, true},
		{"a b", Policy{}, true},
		{"-x", Policy{}, true},
	}
	for _, tc := range tests {
		got, err := ParsePolicy(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParsePolicy(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			if back, err := ParsePolicy(got.String()); err != nil || back != got {
				t.Errorf("ParsePolicy(%q).String() = %q does not parse back", tc.in, got.String())
			}
		}
	}
}

// TestLoadConfigRefusesFIFO: a FIFO given as the config is refused at once
// (nothing writes to it, so a plain open would wait forever).
func TestLoadConfigRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := LoadConfig(path)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "FIFO") || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadConfig(FIFO) = %v, want a config error naming the FIFO", err)
	}
}
