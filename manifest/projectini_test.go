package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtureDir = "../mirror/githubtest/fixtures/projects"

// Every real project.ini in the fixtures parses to what the file says.
func TestParseProjectINIFixtures(t *testing.T) {
	yes := true
	cases := []struct {
		dir, name, version, typ, label string
		autoUpgrade                    *bool
		blobs                          int
		first, last                    string
		sections                       []string
		specs                          []string
	}{
		{"cyclecloud-gridengine/2.1.0", "gridengine", "2.1.0", "scheduler", "Grid Engine", &yes, 3,
			"cyclecloud-gridengine-pkg-2.1.0.tar.gz", "sge-2011.11-common.tgz", []string{"blobs"}, []string{"scheduler", "execute"}},
		{"cyclecloud-hpcpack/2.1.2", "hpcpack", "2.1.2", "", "", nil, 1,
			"cyclecloud-hpcpack-pkg-2.1.2.zip", "cyclecloud-hpcpack-pkg-2.1.2.zip", []string{"blobs hpcpack"}, []string{"hn", "bn", "cn"}},
		{"cyclecloud-pbspro/2.0.25", "pbspro", "2.0.25", "scheduler", "OpenPBS", &yes, 13,
			"cyclecloud-pbspro-pkg-2.0.25.tar.gz", "pbspro-server-18.1.4-0.x86_64.rpm", []string{"blobs"}, []string{"server", "execute", "login"}},
		{"cyclecloud-slurm/2.5.0", "slurm", "2.5.0", "scheduler", "Slurm", nil, 62,
			"cyclecloud_api-8.1.0-py2.py3-none-any.whl", "slurm-torque-20.11.7-1.el8.x86_64.rpm", []string{"blobs"}, []string{"scheduler", "execute"}},
		{"cyclecloud-slurm/2.6.1", "slurm", "2.6.1", "scheduler", "Slurm", nil, 62,
			"cyclecloud_api-8.1.0-py2.py3-none-any.whl", "slurm-torque-20.11.7-1.el8.x86_64.rpm", []string{"blobs"}, []string{"scheduler", "execute", "login"}},
		{"cyclecloud-slurm/2.7.0", "slurm", "2.7.0", "scheduler", "Slurm", nil, 75,
			"cyclecloud_api-8.1.0-py2.py3-none-any.whl", "slurm_22.05.3-1_amd64.deb", []string{"blobs"}, []string{"scheduler", "execute", "login"}},
		{"cyclecloud-slurm/2.7.4", "slurm", "2.7.4", "scheduler", "Slurm", nil, 11,
			"cyclecloud_api-8.1.0-py2.py3-none-any.whl", "slurm-torque-22.05.9-1.el9.x86_64.rpm", []string{"blobs"}, []string{"scheduler", "execute", "login"}},
		{"cyclecloud-slurm/3.0.12", "slurm", "3.0.12", "scheduler", "Slurm", nil, 2,
			"azure-slurm-pkg-3.0.12.tar.gz", "azure-slurm-install-pkg-3.0.12.tar.gz", []string{"blobs"}, []string{"scheduler", "execute", "login"}},
		{"cyclecloud-slurm/4.0.9", "slurm", "4.0.9", "scheduler", "Slurm", nil, 3,
			"azure-slurm-pkg-4.0.9.tar.gz", "azure_slurm_exporter-0.2.0.tar.gz", []string{"blobs"}, []string{"scheduler", "execute", "login"}},
	}
	all, err := filepath.Glob(filepath.Join(fixtureDir, "*", "*", "project.ini"))
	if err != nil || len(all) == 0 {
		t.Fatalf("no fixtures under %s: %v", fixtureDir, err)
	}
	covered := map[string]bool{}
	for _, c := range cases {
		file := filepath.Join(fixtureDir, c.dir, "project.ini")
		covered[file] = true
		t.Run(c.dir, func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, err := ParseProjectINI(f, file)
			if err != nil {
				t.Fatalf("ParseProjectINI: %v", err)
			}
			if p.Name != c.name || p.Version != c.version || p.Type != c.typ || p.Label != c.label {
				t.Errorf("name %q version %q type %q label %q, want %q %q %q %q",
					p.Name, p.Version, p.Type, p.Label, c.name, c.version, c.typ, c.label)
			}
			if (p.AutoUpgrade == nil) != (c.autoUpgrade == nil) || (p.AutoUpgrade != nil && *p.AutoUpgrade != *c.autoUpgrade) {
				t.Errorf("AutoUpgrade %v, want %v", p.AutoUpgrade, c.autoUpgrade)
			}
			if len(p.Blobs) != c.blobs {
				t.Fatalf("%d blobs, want %d: %q", len(p.Blobs), c.blobs, p.Blobs)
			}
			if p.Blobs[0] != c.first || p.Blobs[len(p.Blobs)-1] != c.last {
				t.Errorf("blobs %q ... %q, want %q ... %q", p.Blobs[0], p.Blobs[len(p.Blobs)-1], c.first, c.last)
			}
			if len(p.BlobSections) != len(c.sections) {
				t.Errorf("blob sections %v, want %v", p.BlobSections, c.sections)
			}
			for _, s := range c.sections {
				if strings.Join(p.BlobSections[s], ",") != strings.Join(p.Blobs, ",") {
					t.Errorf("section [%s] holds %q, want every blob", s, p.BlobSections[s])
				}
			}
			if strings.Join(p.Specs, ",") != strings.Join(c.specs, ",") {
				t.Errorf("specs %q, want %q", p.Specs, c.specs)
			}
			for _, b := range p.Blobs {
				if b != strings.TrimSpace(b) || !ValidBlobName(b) {
					t.Errorf("blob %q is not a trimmed valid name", b)
				}
			}
		})
	}
	for _, f := range all {
		if !covered[f] {
			t.Errorf("fixture %s has no expectation in this test", f)
		}
	}
}

func TestParseProjectINI(t *testing.T) {
	const head = "[project]\nname = demo\nversion = 1.0\n"
	cases := []struct {
		name     string
		in       string
		blobs    string // comma-joined Blobs
		sections map[string]string
		specs    string
		label    string
		auto     string // "", "true", "false"
	}{
		{name: "no blobs", in: head},
		{name: "no spaces and mixed case keys", in: "[PROJECT]\nNAME=demo\nVersion=1.0\n[blobs]\nfiles=a.rpm,b.rpm\n",
			blobs: "a.rpm,b.rpm"},
		{name: "several sections dedup across", in: head + "[blobs]\nFiles = a, b\n[blobs extra]\nFiles = b, c\n",
			blobs: "a,b,c", sections: map[string]string{"blobs": "a,b", "blobs extra": "b,c"}},
		{name: "repeated section merges", in: head + "[blobs]\nFiles = a\n[spec x]\n[blobs]\nFiles = b, a\n",
			blobs: "a,b", sections: map[string]string{"blobs": "a,b"}, specs: "x"},
		{name: "relative path entry", in: head + "[blobs]\nFiles = sub/dir/x.rpm , y.rpm,\n",
			blobs: "sub/dir/x.rpm,y.rpm"},
		{name: "empty Files", in: head + "[blobs]\nFiles =\n", blobs: "", sections: map[string]string{"blobs": ""}},
		{name: "continuation line", in: head + "[blobs]\nFiles = a.rpm,\n    b.rpm,\n\tc.rpm\n", blobs: "a.rpm,b.rpm,c.rpm"},
		{name: "colon-equals and colon", in: "[project]\nname := demo\nversion: 1.0\nlabel = A: B\n", label: "A: B"},
		{name: "comments, CRLF and BOM", in: "\ufeff# top\r\n[project]\r\n; c\r\nname = demo\r\nversion = 1.0\r\n[blobs]\r\nFiles = a.rpm\r\n",
			blobs: "a.rpm"},
		{name: "autoupgrade false", in: head + "autoupgrade = False\n", auto: "false"},
		{name: "autoupgrade yes", in: head + "AutoUpgrade = yes\n", auto: "true"},
		{name: "config syntax tolerated", in: head + "[config x]\nConfig.Entries := {[Value=\"1\"]}\n    [[[[list Config.Entries]]]]\n    Name = T\nnonsense line\n[spec s]\nrun_list = role[a]\n",
			specs: "s"},
		{name: "nested keys are not the section's", in: head + "[blobs]\nFiles = a\n    [[[nested]]]\n    Files = ignored\n", blobs: "a"},
		{name: "other keys in blobs ignored", in: head + "[blobs]\nComment = hello\nFiles = a\n", blobs: "a"},
		{name: "unknown project keys ignored", in: head + "description = long\n  text\n", blobs: ""},
		{name: "spec names in order", in: head + "[spec b]\n[spec a]\n[spec b]\n", specs: "b,a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseProjectINI(strings.NewReader(c.in), "x/project.ini")
			if err != nil {
				t.Fatalf("ParseProjectINI: %v", err)
			}
			if p.Name != "demo" || p.Version != "1.0" {
				t.Errorf("name %q version %q", p.Name, p.Version)
			}
			if got := strings.Join(p.Blobs, ","); got != c.blobs {
				t.Errorf("blobs %q, want %q", got, c.blobs)
			}
			for s, want := range c.sections {
				if got := strings.Join(p.BlobSections[s], ","); got != want {
					t.Errorf("[%s] %q, want %q", s, got, want)
				}
			}
			if got := strings.Join(p.Specs, ","); got != c.specs {
				t.Errorf("specs %q, want %q", got, c.specs)
			}
			if c.label != "" && p.Label != c.label {
				t.Errorf("label %q, want %q", p.Label, c.label)
			}
			switch {
			case c.auto == "" && p.AutoUpgrade != nil:
				t.Errorf("AutoUpgrade %v, want nil", *p.AutoUpgrade)
			case c.auto != "" && (p.AutoUpgrade == nil || map[bool]string{true: "true", false: "false"}[*p.AutoUpgrade] != c.auto):
				t.Errorf("AutoUpgrade %v, want %s", p.AutoUpgrade, c.auto)
			}
		})
	}
}

func TestParseProjectINIErrors(t *testing.T) {
	const head = "[project]\nname = demo\nversion = 1.0\n"
	cases := []struct {
		name, in, want string
		verify         bool
	}{
		{name: "no project section", in: "[blobs]\nFiles = a\n", want: "x/project.ini: no [project] section"},
		{name: "no name", in: "[project]\nversion = 1\n", want: "x/project.ini: [project] has no name"},
		{name: "no version", in: "[project]\nname = demo\n", want: "x/project.ini: [project] has no version"},
		{name: "empty version", in: "[project]\nname = demo\nversion =\n", want: "has no version"},
		{name: "absolute blob", in: head + "[blobs]\nFiles = a, /etc/passwd\n", want: `x/project.ini:5: blob "/etc/passwd": absolute path`, verify: true},
		{name: "dot-dot blob", in: head + "[blobs]\nFiles = a,\n  ../../x\n", want: `x/project.ini:6: blob "../../x": path leaves the blobs folder`, verify: true},
		{name: "inner dot-dot blob", in: head + "[blobs]\nFiles = a/../../b\n", want: "x/project.ini:5:", verify: true},
		{name: "backslash blob", in: head + "[blobs]\nFiles = a\\b\n", want: "backslash", verify: true},
		{name: "blob with space", in: head + "[blobs]\nFiles = my file.rpm\n", want: `blob "my file.rpm"`, verify: true},
		{name: "unsafe name", in: "[project]\nname = ../x\nversion = 1\n", want: "x/project.ini:2: [project] name", verify: true},
		{name: "unsafe version", in: "[project]\nname = x\nversion = 1/2\n", want: "x/project.ini:3: [project] version", verify: true},
		{name: "duplicate version", in: head + "version = 2.0\n", want: "x/project.ini:4: [project] version set twice (first on line 3)"},
		{name: "bad autoupgrade", in: head + "autoupgrade = maybe\n", want: "x/project.ini:4: [project] autoupgrade"},
		{name: "key outside section", in: "name = x\n" + head, want: "x/project.ini:1:"},
		{name: "garbage in project", in: head + "what is this\n", want: "x/project.ini:4: expected"},
		{name: "malformed header", in: "[project\nname = x\n", want: "x/project.ini:1: malformed section header"},
		{name: "empty header", in: "[ ]\n", want: "x/project.ini:1: empty section header"},
		{name: "line too long", in: head + "[blobs]\nFiles = " + strings.Repeat("a", maxINILine) + "\n", want: "x/project.ini:5: line longer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseProjectINI(strings.NewReader(c.in), "x/project.ini")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if isVerify(err) != c.verify {
				t.Errorf("errors.Is(err, ErrVerify) = %v, want %v", isVerify(err), c.verify)
			}
		})
	}
}

func FuzzParseProjectINI(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*", "*", "project.ini"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("[project]\nname=a\nversion=1\n[blobs x]\nFiles = a/b, c\n  d\n[[[x]]]\n")
	f.Add("[project]\nname := a\nversion: 1\nautoupgrade=on\n")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseProjectINI(strings.NewReader(in), "fuzz.ini")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.ini") && !strings.HasPrefix(err.Error(), "read fuzz.ini") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if !ValidName(p.Name) || !ValidName(p.Version) {
			t.Fatalf("accepted unsafe name/version %q %q", p.Name, p.Version)
		}
		seen := map[string]bool{}
		for _, b := range p.Blobs {
			if !ValidBlobName(b) || seen[b] {
				t.Fatalf("accepted unsafe or duplicate blob %q", b)
			}
			seen[b] = true
		}
		n := 0
		for _, list := range p.BlobSections {
			for _, b := range list {
				if !seen[b] {
					t.Fatalf("section blob %q missing from Blobs", b)
				}
			}
			n += len(list)
		}
		if n < len(p.Blobs) {
			t.Fatalf("Blobs has %d entries, sections only %d", len(p.Blobs), n)
		}
	})
}
