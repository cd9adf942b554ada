package mirror

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    Ref
		str     string // want String(); "" means skip
		wantErr string // substring of the error; "" means success
	}{
		{in: "slurm", want: Ref{"Azure", "cyclecloud-slurm", ""}, str: "slurm@latest"},
		{in: "slurm@2.5.0", want: Ref{"Azure", "cyclecloud-slurm", "2.5.0"}, str: "slurm@2.5.0"},
		{in: "  pbspro@2.0.25 ", want: Ref{"Azure", "cyclecloud-pbspro", "2.0.25"}},
		{in: "gridengine@latest", want: Ref{"Azure", "cyclecloud-gridengine", ""}},
		{in: "hpcpack@LATEST", want: Ref{"Azure", "cyclecloud-hpcpack", ""}},
		{in: "lsf", want: Ref{"Azure", "cyclecloud-lsf", ""}},
		{in: "symphony@1.0", want: Ref{"Azure", "cyclecloud-symphony", "1.0"}},
		{in: "healthagent", want: Ref{"Azure", "cyclecloud-healthagent", ""}},
		{in: "monitoring@v1.0.0", want: Ref{"Azure", "cyclecloud-monitoring", "v1.0.0"}},
		{in: "Slurm@3.0.12", want: Ref{"Azure", "cyclecloud-slurm", "3.0.12"}},
		{in: "cyclecloud-slurm@3.0.12", want: Ref{"Azure", "cyclecloud-slurm", "3.0.12"}},
		{in: "Azure/cyclecloud-slurm", want: Ref{"Azure", "cyclecloud-slurm", ""}, str: "slurm@latest"},
		{in: "Azure/cyclecloud-slurm@4.0.9", want: Ref{"Azure", "cyclecloud-slurm", "4.0.9"}},
		{in: "contoso/my.project_x@release/1.2", want: Ref{"contoso", "my.project_x", "release/1.2"}, str: "contoso/my.project_x@release/1.2"},
		{in: "https://github.com/Azure/cyclecloud-slurm/releases/2.5.0", want: Ref{"Azure", "cyclecloud-slurm", "2.5.0"}},
		{in: "https://github.com/Azure/cyclecloud-slurm/releases/tag/2.5.0", want: Ref{"Azure", "cyclecloud-slurm", "2.5.0"}},
		{in: "https://github.com/Azure/cyclecloud-slurm/releases/tag/2.5.0/", want: Ref{"Azure", "cyclecloud-slurm", "2.5.0"}},
		{in: "https://github.com/Azure/cyclecloud-slurm/releases/latest", want: Ref{"Azure", "cyclecloud-slurm", ""}},
		{in: "https://github.com/Azure/cyclecloud-slurm/releases", want: Ref{"Azure", "cyclecloud-slurm", ""}},
		{in: "https://github.com/Azure/cyclecloud-slurm", want: Ref{"Azure", "cyclecloud-slurm", ""}},
		{in: "https://ghe.example.com/hpc/cyclecloud-slurm/releases/tag/v3%2B1", want: Ref{"hpc", "cyclecloud-slurm", "v3+1"}},
		{in: "github.com/Azure/cyclecloud-pbspro/releases/tag/2.0.25", want: Ref{"Azure", "cyclecloud-pbspro", "2.0.25"}},
		{in: "https://github.com/Azure/cyclecloud-slurm/releases/tag/2.5.0?x=1#frag", want: Ref{"Azure", "cyclecloud-slurm", "2.5.0"}},

		{in: "", wantErr: "empty"},
		{in: "slurmx", wantErr: "unknown project name"},
		{in: "slurm@", wantErr: "invalid version"},
		{in: "slurm@a b", wantErr: "invalid version"},
		{in: "slurm@../x", wantErr: "invalid version"},
		{in: "slurm@-rf", wantErr: "invalid version"},
		{in: "slurm@x.lock", wantErr: "invalid version"},
		{in: "slurm@a..b", wantErr: "invalid version"},
		{in: "slurm@a:b", wantErr: "invalid version"},
		{in: "a/b/c", wantErr: "invalid repository name"},
		{in: "/repo", wantErr: "invalid repository owner"},
		{in: "owner/", wantErr: "invalid repository name"},
		{in: "owner/..", wantErr: "invalid repository name"},
		{in: "ftp://github.com/Azure/cyclecloud-slurm/releases/1", wantErr: "scheme"},
		{in: "https:///Azure/x/releases/1", wantErr: "no host"},
		{in: "https://github.com/Azure", wantErr: "want https://"},
		{in: "https://github.com/Azure/cyclecloud-slurm/tree/main", wantErr: "not a release URL"},
		{in: "https://github.com/Azure/cyclecloud-slurm/releases/tag", wantErr: "names no tag"},
		{in: "https://github.com/Azure/cyclecloud-slurm/releases/tag/a..b", wantErr: "invalid version"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRef(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRef(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseRef(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if tt.str != "" && got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
			// String is parseable back to the same ref.
			back, err := ParseRef(got.String())
			if err != nil || back != got {
				t.Errorf("ParseRef(String()=%q) = %+v, %v; want %+v", got.String(), back, err, got)
			}
		})
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"slurm", "slurm@2.5.0", "Azure/cyclecloud-slurm@latest", "o/r@v/1",
		"https://github.com/Azure/cyclecloud-slurm/releases/2.5.0",
		"https://github.com/Azure/cyclecloud-slurm/releases/tag/2.5.0",
		"github.com/a/b", "https://x/a/b/releases/tag/%2e%2e", "a@b@c", "@", "/", "://",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if checkRepo(r.Owner, r.Repo) != nil {
			t.Fatalf("ParseRef(%q) accepted a bad repository %+v", s, r)
		}
		if r.Version != "" && checkVersion(r.Version) != nil {
			t.Fatalf("ParseRef(%q) accepted a bad version %q", s, r.Version)
		}
		if strings.EqualFold(r.Version, Latest) {
			t.Fatalf("ParseRef(%q) kept %q instead of normalizing to latest", s, r.Version)
		}
		back, err := ParseRef(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v, %v", s, r, r.String(), back, err)
		}
	})
}
