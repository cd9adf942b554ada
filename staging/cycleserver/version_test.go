package cycleserver

import (
	"reflect"
	"sort"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"2.10.0", "2.9.1", 1},
		{"3.0.12", "3.0.9", 1},
		{"3.0.9", "3.0.12", -1},
		{"4.0.9", "3.0.12", 1},
		{"2.5.0", "2.5.0", 0},
		{"2.5", "2.5.0", 0},
		{"2.5.1", "2.5", 1},
		{"v2.5.0", "2.5.0", 0},
		{"V10", "9", 1},
		{"1.0.0-rc1", "1.0.0", -1},
		{"1.0.0rc1", "1.0.0", -1},
		{"1.0.0-rc2", "1.0.0-rc10", -1},
		{"1.0.0-rc.2", "1.0.0-rc.10", -1},
		{"1.0.0-alpha", "1.0.0-beta", -1},
		{"1.0.0-1", "1.0.0-alpha", -1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-rc1", "0.9.9", 1},
		{"1.0.0+build5", "1.0.0+build6", 0},
		{"02.5", "2.5", 0},
		{"99999999999999999999999.0", "99999999999999999999998.9", 1},
		{"1.x", "1.0", -1},
		{"1.0.dev", "1.0", -1},
		{"", "0", -1},
		{"", "", 0},
	}
	for _, tc := range tests {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestCompareVersionsSortsRealTags(t *testing.T) {
	tags := []string{"3.0.12", "2.7.4", "2.10.0", "4.0.9", "2.5.0", "3.0.9", "2.6.1", "3.0.12-rc1", "2.7.0"}
	sort.Slice(tags, func(i, j int) bool { return CompareVersions(tags[i], tags[j]) < 0 })
	want := []string{"2.5.0", "2.6.1", "2.7.0", "2.7.4", "2.10.0", "3.0.9", "3.0.12-rc1", "3.0.12", "4.0.9"}
	if !reflect.DeepEqual(tags, want) {
		t.Errorf("sorted %v, want %v", tags, want)
	}
}

func FuzzCompareVersions(f *testing.F) {
	f.Add("2.10.0", "2.9.1", "3.0.12")
	f.Add("1.0.0-rc1", "1.0.0rc1", "1.0")
	f.Add("v1.x", "1..2", "-")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if CompareVersions(a, a) != 0 {
			t.Fatalf("%q != itself", a)
		}
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("Compare(%q,%q)=%d, Compare(%q,%q)=%d", a, b, ab, b, a, ba)
		}
		bc, ac := CompareVersions(b, c), CompareVersions(a, c)
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
	})
}

func TestHighest(t *testing.T) {
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
