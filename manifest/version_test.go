package manifest

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

func TestIsVersionTag(t *testing.T) {
	for _, c := range []struct {
		tag         string
		ok, isPlain bool
	}{
		{"2.0.25", true, true},
		{"v1.2.0", true, true},
		{"4.0.0-rc1", true, false},
		{"3.0.12", true, true},
		{"2.5", true, true},
		{"1.0.0rc1", true, false},
		{"2023-03-29-bins", false, false},
		{"2024-12-03-bins", false, false},
		{"10", false, false},
		{"v", false, false},
		{"latest", false, false},
		{"", false, false},
		{"release-2.0.1", false, false},
		{"2.0.", false, false},
		{"1.2.3 4", false, false},
	} {
		ok, plain := IsVersionTag(c.tag)
		if ok != c.ok || plain != c.isPlain {
			t.Errorf("IsVersionTag(%q) = %v, %v; want %v, %v", c.tag, ok, plain, c.ok, c.isPlain)
		}
	}
}

func TestValidTag(t *testing.T) {
	for _, c := range []struct {
		tag  string
		want bool
	}{
		{"2.5.0", true}, {"v1.0.0-rc1", true}, {"2023-03-29-bins", true}, {"releases/x", true},
		{"", false}, {"-x", false}, {"a..b", false}, {"a b", false}, {"a~1", false},
		{"x.lock", false}, {"x/", false}, {"/x", false}, {"a//b", false}, {"a@{b", false},
		{"a\x00b", false}, {"a\\b", false}, {"x.", false},
	} {
		if got := ValidTag(c.tag); got != c.want {
			t.Errorf("ValidTag(%q) = %v, want %v", c.tag, got, c.want)
		}
	}
}
