package cycleserver

import (
	"sort"

	"github.com/ccmirror/ccmirror/manifest"
)

// CompareVersions is manifest.CompareVersions, the one version order.
func CompareVersions(a, b string) int { return manifest.CompareVersions(a, b) }

// Highest returns, for each project name, the record with the highest
// version (CompareVersions; equal versions spelled differently are decided
// by plain string order so the result never depends on input order). The
// result is sorted by name. Records without a Name cannot be grouped and are
// returned as they are, after the named ones, in input order.
func Highest(records []Project) []Project {
	best := map[string]int{}
	var unnamed []Project
	for i, r := range records {
		if r.Name == "" {
			unnamed = append(unnamed, r)
			continue
		}
		j, ok := best[r.Name]
		if !ok || newer(r, records[j]) {
			best[r.Name] = i
		}
	}
	out := make([]Project, 0, len(best)+len(unnamed))
	for _, i := range best {
		out = append(out, records[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return append(out, unnamed...)
}

// newer reports whether a's version is strictly above b's, with the
// tie-break Highest documents.
func newer(a, b Project) bool {
	if c := CompareVersions(a.Version, b.Version); c != 0 {
		return c > 0
	}
	return a.Version > b.Version
}

// Sort orders records by name, then by version from newest to oldest
// (CompareVersions), stably.
func Sort(records []Project) {
	sort.SliceStable(records, func(i, j int) bool {
		if records[i].Name != records[j].Name {
			return records[i].Name < records[j].Name
		}
		return newer(records[i], records[j])
	})
}
