package cycleserver

import (
	"reflect"
	"strings"
	"testing"
)

// realOutput looks like `cycle_server execute 'select * from cloud.project'`
// on a server that holds several versions of slurm and one pbspro.
const realOutput = `AdType = "Cloud.Project"
AutoUpgrade = false
Name = "slurm"
ProjectType = "scheduler"
Url = "https://github.com/Azure/cyclecloud-slurm/releases/2.5.0"
Version = "2.5.0"

AdType = "Cloud.Project"
AutoUpgrade = true
Name = "slurm"
ProjectType = "scheduler"
Url = "https://github.com/Azure/cyclecloud-slurm/releases/3.0.12"
Version = "3.0.12"

AdType = "Cloud.Project"
AutoUpgrade = false
Name = "slurm"
ProjectType = "scheduler"
Url = "https://github.com/Azure/cyclecloud-slurm/releases/tag/3.0.9"
Version = "3.0.9"


AdType = "Cloud.Project"
AutoUpgrade = undefined
Name = "pbspro"
ProjectType = undefined
Url = "https://github.com/Azure/cyclecloud-pbspro/releases/2.0.25"
Version = "2.0.25"

AdType = "Cloud.Project"
Name = "mylocal"
ProjectType = "application"
Url = "file:///opt/projects/mylocal"
Version = "1.0.0"
`

func slurm(v, url string, auto bool) Project {
	return Project{Name: "slurm", Version: v, ProjectType: "scheduler", URL: url, AutoUpgrade: auto,
		Repo: "Azure/cyclecloud-slurm", Tag: v}
}

var realWant = []Project{
	slurm("2.5.0", "https://github.com/Azure/cyclecloud-slurm/releases/2.5.0", false),
	slurm("3.0.12", "https://github.com/Azure/cyclecloud-slurm/releases/3.0.12", true),
	slurm("3.0.9", "https://github.com/Azure/cyclecloud-slurm/releases/tag/3.0.9", false),
	{Name: "pbspro", Version: "2.0.25", URL: "https://github.com/Azure/cyclecloud-pbspro/releases/2.0.25",
		Repo: "Azure/cyclecloud-pbspro", Tag: "2.0.25"},
	{Name: "mylocal", Version: "1.0.0", ProjectType: "application", URL: "file:///opt/projects/mylocal",
		URLProblem: `Url "file:///opt/projects/mylocal" is not a GitHub release URL; want https://github.com/OWNER/REPO/releases/TAG`},
}

func TestParseRecords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []Project
	}{
		{"several records and versions", realOutput, realWant},
		{"CRLF line ends", strings.ReplaceAll(realOutput, "\n", "\r\n"), realWant},
		{"byte-order mark and leading blank lines", "\xef\xbb\xbf\n\n  \n" + realOutput, realWant},
		{"empty output", "", nil},
		{"only blank lines", "\n\r\n \n", nil},
		{
			"odd spacing, key case, unknown keys, escapes",
			"  name=\"slurm\"\nVERSION   =    \"2.5.0\"   \n\tUrl =\"https://github.com/Azure/cyclecloud-slurm/releases/2.5.0\"\n" +
				"Label = \"Slurm \\\"classic\\\" \\u00e9\"\nPriority = 10\nFuture.Key = 1.5e3\n",
			[]Project{{Name: "slurm", Version: "2.5.0", URL: "https://github.com/Azure/cyclecloud-slurm/releases/2.5.0",
				Repo: "Azure/cyclecloud-slurm", Tag: "2.5.0"}},
		},
		{
			"lists and nested records spanning lines",
			"Name = \"gridengine\"\nSpecs = {\n  \"master\",\n  \"execute\" }\nMeta = [ A = 1; B = \"x = {\" ]\nVersion = \"2.1.0\"\n" +
				"Url = \"https://github.com/Azure/cyclecloud-gridengine/releases/2.1.0/\"\n",
			[]Project{{Name: "gridengine", Version: "2.1.0", URL: "https://github.com/Azure/cyclecloud-gridengine/releases/2.1.0/",
				Repo: "Azure/cyclecloud-gridengine", Tag: "2.1.0"}},
		},
		{
			"unquoted version and quoted boolean",
			"Name = \"x\"\nVersion = 2.5\nAutoUpgrade = \"TRUE\"\nUrl = \"https://github.com/o/r/releases/2.5\"\n",
			[]Project{{Name: "x", Version: "2.5", AutoUpgrade: true, URL: "https://github.com/o/r/releases/2.5", Repo: "o/r", Tag: "2.5"}},
		},
		{
			"record without Name or Version is kept with a problem",
			"AdType = \"Cloud.Project\"\nVersion = \"1.0\"\n\nName = \"y\"\nVersion = undefined\n",
			[]Project{{Version: "1.0", URLProblem: "record at line 1 has no Name"},
				{Name: "y", URLProblem: "record at line 4 has no Version"}},
		},
		{
			"name unusable as folder",
			"Name = \"../etc\"\nVersion = \"1.0\"\nUrl = \"https://github.com/o/r/releases/1.0\"\n",
			[]Project{{Name: "../etc", Version: "1.0", URL: "https://github.com/o/r/releases/1.0",
				URLProblem: `name "../etc" is not usable as a folder name`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRecords([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseRecords: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestParseRecordsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, wantErr string
	}{
		{"not key value", "Name = \"slurm\"\nsomething odd\n", `line 2: not a ` + "`Key = value`" + ` line: "something odd"`},
		{"error text printed on stdout", "Error: could not connect to CycleServer\n", "line 1: not a"},
		{"records run together", "Name = \"a\"\nVersion = \"1\"\nName = \"b\"\n", "line 3: Name given twice in one record (first on line 1)"},
		{"same key different case", "Name = \"a\"\nNAME = \"b\"\n", "line 2: NAME given twice"},
		{"unterminated quote", "Name = \"a\nVersion = \"1\"\n\nName = \"b\"\n", "line 1: Name: value never ends"},
		{"never-ending quote", "Name = \"a\n\n", "line 1: Name: value never ends"},
		{"unbalanced bracket", "Specs = }\n", "line 1: Specs: unbalanced '}'"},
		{"empty key", " = \"a\"\n", "line 1: not a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRecords([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseRecords succeeded with %+v, want error containing %q", got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

const realJSON = `[
  {"AdType": "Cloud.Project", "AutoUpgrade": false, "Name": "slurm", "ProjectType": "scheduler",
   "Url": "https://github.com/Azure/cyclecloud-slurm/releases/2.5.0", "Version": "2.5.0"},
  {"AdType": "Cloud.Project", "AutoUpgrade": true, "Name": "slurm", "ProjectType": "scheduler",
   "Url": "https://github.com/Azure/cyclecloud-slurm/releases/3.0.12", "Version": "3.0.12"},
  {"AdType": "Cloud.Project", "AutoUpgrade": false, "Name": "slurm", "ProjectType": "scheduler",
   "Url": "https://github.com/Azure/cyclecloud-slurm/releases/tag/3.0.9", "Version": "3.0.9"},
  {"AdType": "Cloud.Project", "AutoUpgrade": null, "Name": "pbspro", "ProjectType": null,
   "Url": "https://github.com/Azure/cyclecloud-pbspro/releases/2.0.25", "Version": "2.0.25", "Extra": {"a": [1, 2]}},
  {"AdType": "Cloud.Project", "Name": "mylocal", "ProjectType": "application",
   "Url": "file:///opt/projects/mylocal", "Version": "1.0.0"}
]`

func TestParseJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []Project
	}{
		{"same records as the default format", realJSON, realWant},
		{"CRLF and BOM", "\xef\xbb\xbf" + strings.ReplaceAll(realJSON, "\n", "\r\n") + "\r\n", realWant},
		{"empty array", "[]", []Project{}},
		{
			"single object, lower-case keys, number version, string boolean",
			`{"name": "x", "version": 2.5, "autoupgrade": "true", "url": "https://github.com/o/r/releases/tag/2.5"}`,
			[]Project{{Name: "x", Version: "2.5", AutoUpgrade: true, URL: "https://github.com/o/r/releases/tag/2.5", Repo: "o/r", Tag: "2.5"}},
		},
		{
			"missing Url",
			`[{"Name": "x", "Version": "1"}]`,
			[]Project{{Name: "x", Version: "1", URLProblem: "no Url"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseJSON([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "  \n", "empty output"},
		{"default format", realOutput, "not JSON"},
		{"trailing data", `[] garbage`, "trailing data"},
		{"two documents", `[] []`, "trailing data"},
		{"scalar", `"slurm"`, "neither an array"},
		{"element not object", `[{"Name": "a"}, 3]`, "record 2 is not a JSON object"},
		{"duplicate key by case", `[{"Name": "a", "name": "b"}]`, "given twice"},
		{"truncated", `[{"Name": "a"`, "not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseJSON succeeded with %+v, want error containing %q", got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseReleaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, repo, tag, problem string
	}{
		{"https://github.com/Azure/cyclecloud-slurm/releases/2.5.0", "Azure/cyclecloud-slurm", "2.5.0", ""},
		{"https://github.com/Azure/cyclecloud-slurm/releases/tag/2.5.0", "Azure/cyclecloud-slurm", "2.5.0", ""},
		{"https://github.com/Azure/cyclecloud-slurm/releases/tag/2.5.0/", "Azure/cyclecloud-slurm", "2.5.0", ""},
		{"  https://GitHub.com/Azure/cyclecloud-pbspro/releases/v2.0.25  ", "Azure/cyclecloud-pbspro", "v2.0.25", ""},
		{"http://www.github.com/o/r.x/releases/tag/feature/1.0", "o/r.x", "feature/1.0", ""},
		{"", "", "", "no Url"},
		{"file:///opt/cycle_server/projects/slurm", "", "", "is not a GitHub release URL"},
		{"https://github.com/Azure/cyclecloud-slurm", "", "", "names a repository, not a release"},
		{"https://github.com/Azure/cyclecloud-slurm/", "", "", "names a repository, not a release"},
		{"https://github.com/Azure/cyclecloud-slurm.git", "", "", "names a repository"},
		{"https://github.com/Azure/cyclecloud-slurm/archive/refs/tags/2.5.0.tar.gz", "", "", "not a release URL"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/download/2.5.0/x.rpm", "", "", "not a release URL"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/latest", "", "", "latest"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/", "", "", "not a release URL"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/tag/", "", "", "names no tag"},
		{"https://example.com/Azure/cyclecloud-slurm/releases/2.5.0", "", "", "not on github.com"},
		{"https://github.com:8443/Azure/cyclecloud-slurm/releases/2.5.0", "", "", "not on github.com"},
		{"https://user:pw@github.com/Azure/cyclecloud-slurm/releases/2.5.0", "", "", "credentials"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/2.5.0?x=1", "", "", "query"},
		{"https://github.com/Azure/../releases/2.5.0", "", "", "does not name a GitHub repository"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/tag/..", "", "", "not a usable tag"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/-rf", "", "", "not a usable tag"},
		{"https://github.com/Azure/cyclecloud-slurm/releases/a%20b", "", "", "not a usable tag"},
		{"slurm", "", "", "not a GitHub release URL"},
		{"://bad", "", "", "is not a URL"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			repo, tag, err := ParseReleaseURL(tc.url)
			if tc.problem == "" {
				if err != nil || repo != tc.repo || tag != tc.tag {
					t.Fatalf("got %q %q %v, want %q %q", repo, tag, err, tc.repo, tc.tag)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("got %q %q err %v, want error containing %q", repo, tag, err, tc.problem)
			}
			if repo != "" || tag != "" {
				t.Errorf("error case returned repo %q tag %q; nothing may be guessed", repo, tag)
			}
		})
	}
}

// FuzzParseRecords checks the default-format parser never panics, that its
// results are self-consistent, and that it is deterministic.
func FuzzParseRecords(f *testing.F) {
	for _, s := range []string{
		realOutput,
		strings.ReplaceAll(realOutput, "\n", "\r\n"),
		"Name = \"a\\\"b\"\nVersion = \"1\"\n",
		"Specs = {\n \"a\",\n \"b\" }\nName=\"x\"\nVersion=\"2\"\n",
		"Name = \"a\n",
		"Meta = [ A = 1; B = { \"x\" } ]\n",
		"Name = \"\\u00e9\\u12\"\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseRecords(b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		checkProjects(t, got)
		again, _ := ParseRecords(b)
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("not deterministic")
		}
	})
}

// FuzzParseJSON checks the JSON parser never panics and its results are
// self-consistent.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		realJSON,
		`{"Name": "x", "Version": 1.0, "Url": null}`,
		`[{"Name": "x", "name": "y"}]`,
		`[{"Name": ["a"], "Version": {"a": 1}, "AutoUpgrade": "yes"}]`,
		`[] x`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseJSON(b)
		if err != nil {
			return
		}
		checkProjects(t, got)
	})
}

// checkProjects asserts the invariants every parsed record keeps.
func checkProjects(t *testing.T, ps []Project) {
	t.Helper()
	for _, p := range ps {
		if p.URLProblem != "" {
			if p.Repo != "" || p.Tag != "" {
				t.Fatalf("%+v: Repo/Tag set despite a problem", p)
			}
			continue
		}
		if p.Name == "" || p.Version == "" || p.Repo == "" || p.Tag == "" || strings.Count(p.Repo, "/") != 1 {
			t.Fatalf("%+v: usable record with empty or malformed fields", p)
		}
		repo, tag, err := ParseReleaseURL(p.URL)
		if err != nil || repo != p.Repo || tag != p.Tag {
			t.Fatalf("%+v: Repo/Tag do not follow from the Url", p)
		}
	}
}
