package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/request"
	"github.com/ccmirror/ccmirror/staging"
)

// rec is one cloud.project record the fake cycle_server prints.
type rec struct{ name, version, url string }

func ghURL(repo, tag string) string { return "https://github.com/Azure/" + repo + "/releases/" + tag }

// fakeCycleServer writes a cycle_server stand-in printing recs for
// `execute -format json QUERY` (unless jsonFails: then it exits 1 like an
// older release that lacks -format) and in the `Key = value` format for
// `execute QUERY`. Any other command line fails.
func fakeCycleServer(t *testing.T, recs []rec, jsonFails bool) string {
	t.Helper()
	dir := t.TempDir()
	var js, kv strings.Builder
	js.WriteString("[\n")
	for i, r := range recs {
		sep := ","
		if i == len(recs)-1 {
			sep = ""
		}
		name := ""
		if r.name != "" {
			name = fmt.Sprintf(`"Name": %q, `, r.name)
		}
		fmt.Fprintf(&js, `  {"AdType": "Cloud.Project", %s"Version": %q, "Url": %q, "ProjectType": "scheduler", "AutoUpgrade": false}%s`+"\n", name, r.version, r.url, sep)
		kv.WriteString("AdType = \"Cloud.Project\"\nAutoUpgrade = false\n")
		if r.name != "" {
			fmt.Fprintf(&kv, "Name = %q\n", r.name)
		}
		fmt.Fprintf(&kv, "ProjectType = \"scheduler\"\nUrl = %q\nVersion = %q\n\n", r.url, r.version)
	}
	js.WriteString("]\n")
	if err := os.WriteFile(filepath.Join(dir, "records.json"), []byte(js.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "records.txt"), []byte(kv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonBranch := `cat "$d/records.json"; exit 0`
	if jsonFails {
		jsonBranch = `echo "Unknown option: -format" >&2; exit 1`
	}
	script := `#!/bin/sh
d=$(dirname "$0")
q='select * from cloud.project'
if [ "$#" = 4 ] && [ "$1" = execute ] && [ "$2" = -format ] && [ "$3" = json ] && [ "$4" = "$q" ]; then
  ` + jsonBranch + `
fi
if [ "$#" = 2 ] && [ "$1" = execute ] && [ "$2" = "$q" ]; then cat "$d/records.txt"; exit 0; fi
echo "unexpected arguments: $*" >&2; exit 65
`
	p := filepath.Join(dir, "cycle_server")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// stagedTree builds a scratch root by hand:
//   - slurm 2.5.0 complete (blobs a.rpm, b.whl),
//   - pbspro 2.0.25 lacking one of its blobs (pbs.rpm present, pbs-x.rpm not),
//   - gridengine 2.1.0: a version folder without project.ini,
//   - mylocal 1.0.0 complete, no blobs,
//   - hpcpack: only a blob in a sub-folder (blobs/sub/vnet.json), no version.
func stagedTree(t *testing.T) (root string, blobs map[string]string) {
	t.Helper()
	root = t.TempDir()
	projects := staging.ProjectsDir(root)
	blobs = map[string]string{}
	write := func(rel, content string) {
		p := filepath.Join(projects, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if i := strings.Index(rel, "/blobs/"); i >= 0 {
			blobs[rel[:i]+" "+rel[i+len("/blobs/"):]] = content
		}
	}
	ini := func(name, version, files string) string {
		return fmt.Sprintf("[project]\nname = %s\nversion = %s\ntype = scheduler\n\n[blobs]\nFiles = %s\n", name, version, files)
	}
	write("slurm/2.5.0/project.ini", ini("slurm", "2.5.0", "a.rpm, b.whl"))
	write("slurm/2.5.0/scheduler/cluster-init/scripts/00.sh", "#!/bin/sh\n")
	write("slurm/blobs/a.rpm", "rpm bytes")
	write("slurm/blobs/b.whl", "wheel bytes, a little longer")
	write("pbspro/2.0.25/project.ini", ini("pbspro", "2.0.25", "pbs.rpm, pbs-x.rpm"))
	write("pbspro/blobs/pbs.rpm", "pbs")
	if err := os.MkdirAll(filepath.Join(projects, "gridengine", "2.1.0", "sge"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("mylocal/1.0.0/project.ini", "[project]\nname = mylocal\nversion = 1.0.0\n")
	write("hpcpack/blobs/sub/vnet.json", "{}\n")
	return root, blobs
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var (
	slurm250  = rec{"slurm", "2.5.0", ghURL("cyclecloud-slurm", "2.5.0")}
	slurm291  = rec{"slurm", "2.9.1", ghURL("cyclecloud-slurm", "2.9.1")}
	slurm2100 = rec{"slurm", "2.10.0", "https://github.com/Azure/cyclecloud-slurm/releases/tag/2.10.0"}
	pbspro    = rec{"pbspro", "2.0.25", ghURL("cyclecloud-pbspro", "2.0.25")}
	grid      = rec{"gridengine", "2.1.0", ghURL("cyclecloud-gridengine", "2.1.0")}
	local     = rec{"mylocal", "1.0.0", "file:///opt/projects/mylocal"}                     // staged: fine
	otherFile = rec{"other", "0.1", "file:///opt/projects/other"}                           // not staged
	bareRepo  = rec{"lsf", "3.2.2", "https://github.com/Azure/cyclecloud-lsf"}              // not a release
	noName    = rec{"", "1.0", "https://github.com/Azure/cyclecloud-nameless/releases/1.0"} // no Name
)

func item(name, version, repo, tag, url, reason string) request.Item {
	return request.Item{Name: name, Version: version, Repository: repo, Tag: tag, URL: url, Reason: reason}
}

var (
	wantSlurm2100 = item("slurm", "2.10.0", "Azure/cyclecloud-slurm", "2.10.0", slurm2100.url, request.ReasonMissing)
	wantSlurm291  = item("slurm", "2.9.1", "Azure/cyclecloud-slurm", "2.9.1", slurm291.url, request.ReasonMissing)
	wantPbspro    = item("pbspro", "2.0.25", "Azure/cyclecloud-pbspro", "2.0.25", pbspro.url, request.ReasonIncomplete)
	wantGrid      = item("gridengine", "2.1.0", "Azure/cyclecloud-gridengine", "2.1.0", grid.url, request.ReasonIncomplete)
)

func TestMake(t *testing.T) {
	t.Parallel()
	every := []rec{slurm250, slurm2100, pbspro, local, slurm291, grid, otherFile, bareRepo, noName}
	unresolvable := []string{"lsf@3.2.2", "other@0.1", "@1.0"}
	tests := []struct {
		name       string
		recs       []rec
		all        bool
		jsonFails  bool
		wanted     []request.Item
		staged     []string // name@version
		older      []string
		unresolved []string // name@version
		details    map[string]string
	}{
		{
			name: "highest version per project, json format", recs: every,
			wanted: []request.Item{wantGrid, wantPbspro, wantSlurm2100},
			staged: []string{"mylocal@1.0.0"}, older: []string{"slurm@2.9.1", "slurm@2.5.0"}, unresolved: unresolvable,
			details: map[string]string{
				"pbspro@2.0.25":    "1 blob missing: pbs-x.rpm",
				"gridengine@2.1.0": "exists but holds no project.ini",
			},
		},
		{
			name: "highest version per project, Key = value format only", recs: every, jsonFails: true,
			wanted: []request.Item{wantGrid, wantPbspro, wantSlurm2100},
			staged: []string{"mylocal@1.0.0"}, older: []string{"slurm@2.9.1", "slurm@2.5.0"}, unresolved: unresolvable,
		},
		{
			name: "all versions", recs: every, all: true,
			wanted: []request.Item{wantGrid, wantPbspro, wantSlurm2100, wantSlurm291},
			staged: []string{"mylocal@1.0.0", "slurm@2.5.0"}, unresolved: unresolvable,
		},
		{
			name: "all versions, Key = value format only", recs: every, all: true, jsonFails: true,
			wanted: []request.Item{wantGrid, wantPbspro, wantSlurm2100, wantSlurm291},
			staged: []string{"mylocal@1.0.0", "slurm@2.5.0"}, unresolved: unresolvable,
		},
		{
			name: "nothing missing", recs: []rec{slurm250, local},
			staged: []string{"mylocal@1.0.0", "slurm@2.5.0"},
		},
		{
			name: "no records", recs: nil,
		},
		{
			// The highest version's Url is unusable: it is reported, and plan
			// does not fall back to an older version nor guess a tag.
			name:  "highest version unresolvable",
			recs:  []rec{slurm250, {"slurm", "3.0.0", "https://github.com/Azure/cyclecloud-slurm"}},
			older: []string{"slurm@2.5.0"}, unresolved: []string{"slurm@3.0.0"},
		},
		{
			name:   "duplicate records agree",
			recs:   []rec{slurm2100, {"slurm", "2.10.0", ghURL("cyclecloud-slurm", "2.10.0")}, {"slurm", "2.10.0", "file:///x"}},
			wanted: []request.Item{wantSlurm2100},
		},
		{
			name:       "duplicate records disagree",
			recs:       []rec{slurm2100, {"slurm", "2.10.0", "https://github.com/someone/fork/releases/2.10.0"}},
			unresolved: []string{"slurm@2.10.0"},
			details:    map[string]string{"slurm@2.10.0": "name different releases"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, blobs := stagedTree(t)
			cs := fakeCycleServer(t, tc.recs, tc.jsonFails)
			created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			req, rep, err := Make(context.Background(), Options{Root: root, CyclePath: cs, AllVersions: tc.all,
				Hostname: "cc1.example", Now: func() time.Time { return created }})
			if err != nil {
				t.Fatal(err)
			}
			if req.Schema != request.Schema || !req.Created.Equal(created) || req.Hostname != "cc1.example" || req.Root != root {
				t.Errorf("request head: %q %v %q %q", req.Schema, req.Created, req.Hostname, req.Root)
			}
			// An incomplete version carries its folder's print (its value
			// is the staging package's business; TestRepairIncompleteVersion
			// checks install honours it); a missing one none.
			got := append([]request.Item(nil), req.Wanted...)
			for i, it := range got {
				if (it.Reason == request.ReasonIncomplete) != manifest.ValidPrint(it.Staged) {
					t.Errorf("wanted %s@%s (%s): staged print %q", it.Name, it.Version, it.Reason, it.Staged)
				}
				got[i].Staged = ""
			}
			if !reflect.DeepEqual(got, tc.wanted) && len(got)+len(tc.wanted) > 0 {
				t.Errorf("wanted:\n got %+v\nwant %+v", got, tc.wanted)
			}
			if rep.Records != len(tc.recs) || rep.AllVersions != tc.all {
				t.Errorf("report records %d all %v", rep.Records, rep.AllVersions)
			}
			if got := keys(rep.Staged); !reflect.DeepEqual(got, tc.staged) {
				t.Errorf("staged %v, want %v", got, tc.staged)
			}
			if got := keys(rep.Older); !reflect.DeepEqual(got, tc.older) {
				t.Errorf("older %v, want %v", got, tc.older)
			}
			var unres []string
			for _, u := range req.Unresolvable {
				unres = append(unres, u.Name+"@"+u.Version)
				if u.Problem == "" {
					t.Errorf("unresolvable %+v has no problem", u)
				}
			}
			if !reflect.DeepEqual(unres, tc.unresolved) {
				t.Errorf("unresolvable %v, want %v", unres, tc.unresolved)
			}
			if !reflect.DeepEqual(rep.Unresolvable, req.Unresolvable) && len(req.Unresolvable) > 0 {
				t.Errorf("report unresolvable %+v differs from request %+v", rep.Unresolvable, req.Unresolvable)
			}
			for key, want := range tc.details {
				found := false
				for _, w := range rep.Wanted {
					if w.Name+"@"+w.Version == key {
						found = true
						if !strings.Contains(w.Detail, want) {
							t.Errorf("%s detail %q, want it to contain %q", key, w.Detail, want)
						}
					}
				}
				for _, u := range rep.Unresolvable {
					if u.Name+"@"+u.Version == key {
						found = true
						if !strings.Contains(u.Problem, want) {
							t.Errorf("%s problem %q, want it to contain %q", key, u.Problem, want)
						}
					}
				}
				if !found {
					t.Errorf("%s not reported", key)
				}
			}
			checkInventory(t, req, blobs)
			// The request survives its own file format.
			b, err := req.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := request.Parse(b)
			if err != nil {
				t.Fatalf("request does not parse back: %v", err)
			}
			if len(back.Wanted) != len(req.Wanted) || len(back.Inventory) != len(req.Inventory) {
				t.Errorf("round trip lost entries")
			}
		})
	}
}

func keys(vs []Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name+"@"+v.Version)
	}
	return out
}

// checkInventory: every staged blob, and nothing else, with its real sha256
// and size; staged versions per project.
func checkInventory(t *testing.T, req *request.Request, blobs map[string]string) {
	t.Helper()
	got := map[string]request.StagedBlob{}
	versions := map[string][]string{}
	for _, p := range req.Inventory {
		versions[p.Name] = p.Versions
		for _, b := range p.Blobs {
			got[p.Name+" "+b.Name] = b
		}
	}
	for key, content := range blobs {
		b, ok := got[key]
		if !ok {
			t.Errorf("inventory lacks %s", key)
			continue
		}
		if b.SHA256 != sum(content) || b.Size != int64(len(content)) {
			t.Errorf("inventory %s: sha256 %s size %d, want %s %d", key, b.SHA256, b.Size, sum(content), len(content))
		}
		delete(got, key)
	}
	for key := range got {
		t.Errorf("inventory lists %s, which is not staged", key)
	}
	want := map[string][]string{"slurm": {"2.5.0"}, "pbspro": {"2.0.25"}, "mylocal": {"1.0.0"}, "hpcpack": nil}
	if !reflect.DeepEqual(versions, want) {
		t.Errorf("inventory versions %v, want %v", versions, want)
	}
	b, ok := req.StagedBlob("hpcpack", "sub/vnet.json")
	if !ok || b.SHA256 != sum("{}\n") {
		t.Errorf("StagedBlob(hpcpack, sub/vnet.json) = %+v, %v", b, ok)
	}
}

func TestMakeVersionsOrderNumerically(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	var recs []rec
	for _, v := range []string{"2.9.1", "2.10.0", "2.10", "10.0.0-rc1", "3.0.12", "3.0.9"} {
		recs = append(recs, rec{"slurm", v, ghURL("cyclecloud-slurm", v)})
	}
	req, rep, err := Make(context.Background(), Options{Root: root, CyclePath: fakeCycleServer(t, recs, false), Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Wanted) != 1 || req.Wanted[0].Version != "10.0.0-rc1" {
		t.Errorf("highest: %+v, want 10.0.0-rc1", req.Wanted)
	}
	want := []string{"slurm@3.0.12", "slurm@3.0.9", "slurm@2.10.0", "slurm@2.10", "slurm@2.9.1"}
	if got := keys(rep.Older); !reflect.DeepEqual(got, want) {
		t.Errorf("older %v, want %v (newest first, numeric)", got, want)
	}
	if len(req.Inventory) != 0 {
		t.Errorf("empty root inventory %+v", req.Inventory)
	}

	req, _, err = Make(context.Background(), Options{Root: root, CyclePath: fakeCycleServer(t, recs, true), AllVersions: true, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range req.Wanted {
		got = append(got, it.Version)
	}
	if w := []string{"10.0.0-rc1", "3.0.12", "3.0.9", "2.10.0", "2.10", "2.9.1"}; !reflect.DeepEqual(got, w) {
		t.Errorf("all versions %v, want %v", got, w)
	}
}

func TestMakeErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	bad := filepath.Join(t.TempDir(), "cycle_server")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'Error: Unable to connect to CycleServer' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, root, cyclePath string
		want                  []string
	}{
		{"server down", root, bad, []string{"ask CycleCloud for its projects", "Unable to connect to CycleServer"}},
		{"no cycle_server", root, filepath.Join(root, "nope"), []string{"ask CycleCloud", filepath.Join(root, "nope")}},
		{"default path is under root", root, "", []string{filepath.Join(root, "cycle_server")}},
		{"no such root", filepath.Join(root, "nope"), bad, []string{"root " + filepath.Join(root, "nope") + " does not exist", "pass --root"}},
		{"root is a file", file, bad, []string{"root " + file + " does not exist or is not a folder"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Make(context.Background(), Options{Root: tc.root, CyclePath: tc.cyclePath, Hostname: "h"})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestMakeCancelled(t *testing.T) {
	t.Parallel()
	root, _ := stagedTree(t)
	cs := fakeCycleServer(t, []rec{slurm250}, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Make(ctx, Options{Root: root, CyclePath: cs, Hostname: "h"}); err == nil {
		t.Fatal("cancelled plan succeeded")
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"slurm", 10, "slurm"},
		{"é ok", 10, "é ok"},
		{"bad\nname", 20, `"bad\nname"`},
		{"\x1b[31mred", 20, `"\x1b[31mred"`},
		{"\xff", 20, `"\xff"`},
		{"\u2028", 20, `"\u2028"`},
		{strings.Repeat("a", 20), 10, strings.Repeat("a", 7) + "..."},
		{"bad\nname", 8, `"bad\...`},
	}
	for _, tc := range tests {
		if got := printable(tc.in, tc.max); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
