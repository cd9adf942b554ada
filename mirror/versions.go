package mirror

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ccmirror/ccmirror/manifest"
)

// Release selection. "latest" (the default version of a ref) and sync's
// "newest:N" pick by version number, never by GitHub's "latest" mark or
// publication date:
//
//   - Only non-draft releases whose tag is a version count
//     (manifest.IsVersionTag: optional "v", digits with at least one dot,
//     optional suffix). Dated tags such as "2023-03-29-bins", which Azure
//     uses for releases that only carry blobs, never count.
//   - Prereleases count: several Azure CycleCloud projects (pbspro,
//     gridengine, hpcpack) publish every release as a prerelease, and
//     GitHub's /releases/latest skips prereleases, so it has no answer for
//     them.
//   - A plain version beats a suffixed one (4.0.0 > 4.0.0-rc1); a suffixed
//     one is chosen only when no plain one exists.
//   - Among those, the highest version wins (manifest.CompareVersions, the
//     one numeric order: 2.10.0 > 2.9.1). A backport published later (Azure
//     publishes 3.0.x after 4.0.x, and GitHub may mark it latest) never
//     beats a higher version.

// RankReleases returns the releases that count as versions, best first:
// plain versions before suffixed ones, each from the highest version down;
// equal versions (v1.2.0 and 1.2.0) by later publication, then tag.
func RankReleases(rels []Release) []Release {
	var out []Release
	for _, r := range rels {
		if ok, _ := manifest.IsVersionTag(r.Tag); ok && !r.Draft {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Release) int {
		_, pa := manifest.IsVersionTag(a.Tag)
		_, pb := manifest.IsVersionTag(b.Tag)
		if pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		if c := manifest.CompareVersions(a.Tag, b.Tag); c != 0 {
			return -c
		}
		if c := b.PublishedAt.Compare(a.PublishedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	return out
}

// NewestReleases returns the n best releases by RankReleases (fewer when
// the repository has fewer): what sync's "newest:N" mirrors.
func NewestReleases(rels []Release, n int) []Release {
	r := RankReleases(rels)
	if len(r) > n {
		r = r[:max(n, 0)]
	}
	return r
}

// LatestRelease returns the release "latest" means for a repository: the
// best by RankReleases. When no release counts, the error (matching
// ErrUpstream) names what the repository has instead.
func LatestRelease(repository string, rels []Release) (*Release, error) {
	r := RankReleases(rels)
	if len(r) == 0 {
		return nil, NoVersionError(repository, rels)
	}
	return &r[0], nil
}

// NoVersionError is the error for a repository none of whose releases
// counts as a version: it names what was found. It matches ErrUpstream.
func NoVersionError(repository string, rels []Release) error {
	if len(rels) == 0 {
		return upstreamf("%s has no releases", repository)
	}
	const show = 5
	var tags []string
	drafts := 0
	for _, r := range rels {
		if r.Draft {
			drafts++
			continue
		}
		if len(tags) < show {
			tags = append(tags, r.Tag)
		}
	}
	found := fmt.Sprintf("%d release(s)", len(rels))
	if n := len(rels) - drafts; n > 0 {
		found += " tagged " + strings.Join(tags, ", ")
		if n > show {
			found += fmt.Sprintf(" and %d more", n-show)
		}
	}
	if drafts > 0 {
		found += fmt.Sprintf(" (%d draft(s), which do not count)", drafts)
	}
	return upstreamf("%s has no release tagged with a version (like 2.0.25 or v1.2.0); found %s", repository, found)
}

// resolutionNote is the one line that says what "latest" resolved to and
// why: "slurm latest → 4.0.9 (highest version; GitHub marks 3.0.13
// latest)". marked is the tag GitHub marks latest, "" when it marks none
// (every release a prerelease), and known says whether GitHub was asked
// successfully.
func resolutionNote(ref Ref, tag, marked string, known bool) string {
	why := "highest version"
	switch {
	case !known:
	case marked == "":
		why += "; GitHub marks no release latest"
	case marked == tag:
		why += ", also GitHub's latest"
	default:
		why += "; GitHub marks " + marked + " latest"
	}
	return fmt.Sprintf("%s latest → %s (%s)", ref.Name(), tag, why)
}
