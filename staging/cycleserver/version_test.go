package cycleserver

import (
	"reflect"
	"testing"
)

func TestHighest(t *testing.T) {
	t.Parallel()
	p := func(name, v string) Project { return Project{Name: name, Version: v} }
	tests := []struct {
		name string
		in   []Project
		want []Project
	}{
		{"empty", nil, []Project{}},
		{
			"numeric not string order",
			[]Project{p("slurm", "2.9.1"), p("slurm", "3.0.9"), p("slurm", "2.10.0"), p("slurm", "3.0.12"), p("pbspro", "2.0.25")},
			[]Project{p("pbspro", "2.0.25"), p("slurm", "3.0.12")},
		},
		{
			"release beats its release candidate",
			[]Project{p("slurm", "4.0.0"), p("slurm", "4.0.0-rc2")},
			[]Project{p("slurm", "4.0.0")},
		},
		{
			"equal versions spelled differently do not depend on order",
			[]Project{p("a", "2.5"), p("a", "2.5.0")},
			[]Project{p("a", "2.5.0")},
		},
		{
			"equal versions spelled differently, reversed",
			[]Project{p("a", "2.5.0"), p("a", "2.5")},
			[]Project{p("a", "2.5.0")},
		},
		{
			"unnamed records are kept after named ones",
			[]Project{{Version: "1", URLProblem: "x"}, p("b", "1"), {Version: "2", URLProblem: "y"}},
			[]Project{p("b", "1"), {Version: "1", URLProblem: "x"}, {Version: "2", URLProblem: "y"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Highest(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSort(t *testing.T) {
	t.Parallel()
	recs, err := ParseRecords([]byte(realOutput))
	if err != nil {
		t.Fatal(err)
	}
	Sort(recs)
	var got []string
	for _, r := range recs {
		got = append(got, r.Name+"@"+r.Version)
	}
	want := []string{"mylocal@1.0.0", "pbspro@2.0.25", "slurm@3.0.12", "slurm@3.0.9", "slurm@2.5.0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
