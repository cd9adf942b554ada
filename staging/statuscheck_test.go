package staging

import (
	"strings"
	"testing"
)

func TestStatusTrouble(t *testing.T) {
	tests := []struct {
		name string
		rep  StatusReport
		want []string // "" alone: no trouble
	}{
		{"all well", StatusReport{Versions: []VersionStatus{{Name: "slurm", Version: "2.5.0", OK: true}}}, nil},
		{"install running is no trouble", StatusReport{InstallRunning: "pid 7"}, nil},
		{"problem", StatusReport{Problems: 1, Versions: []VersionStatus{{Name: "slurm", Version: "2.5.0"}, {Name: "pbspro", Version: "2.0.25", OK: true}}},
			[]string{"1 version(s) with problems (slurm 2.5.0)"}},
		{"incomplete", StatusReport{Incomplete: []string{"/r/projects/slurm/2.5.0"}}, []string{"without project.ini", "/r/projects/slurm/2.5.0"}},
		{"interrupted", StatusReport{Interrupted: []string{"/s/tmp/x"}}, []string{"1 interrupted install"}},
		{"a running install's folder", StatusReport{Interrupted: []string{"/s/tmp/x"}, InstallRunning: "pid 7"}, nil},
	}
	for _, tt := range tests {
		got := tt.rep.Trouble()
		if (got == "") != (len(tt.want) == 0) {
			t.Errorf("%s: Trouble() = %q", tt.name, got)
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: Trouble() = %q, want it to say %q", tt.name, got, w)
			}
		}
	}
}
