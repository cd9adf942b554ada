package githubtest

import (
	"strings"
)

// blobFiles returns every entry of the Files key of every [blobs] or
// [blobs NAME] section of a project.ini, in order, trimmed and deduplicated.
// It is deliberately small: section headers are lines starting with a single
// "[", CycleCloud's indented "[[[[list ...]]]]" lines are not headers, and
// "Files=a,b" and "Files = a, b" both work.
func blobFiles(ini []byte) []string {
	var out []string
	seen := map[string]bool{}
	inBlobs := false
	for _, line := range strings.Split(string(ini), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' {
			if strings.HasPrefix(t, "[[") {
				continue
			}
			end := strings.IndexByte(t, ']')
			if end < 0 {
				continue
			}
			name := strings.ToLower(strings.TrimSpace(t[1:end]))
			inBlobs = name == "blobs" || strings.HasPrefix(name, "blobs ")
			continue
		}
		if !inBlobs {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "files") {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f != "" && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// retag rewrites a project.ini for a release copied from tag old to tag
// new: every occurrence of old that stands alone as a version (not part of
// a longer dotted number) becomes new, so "version = 4.0.9" and
// "azure-slurm-pkg-4.0.9.tar.gz" follow the new tag, as they would in a
// real release.
func retag(ini []byte, old, new string) []byte {
	if old == "" || old == new {
		return append([]byte(nil), ini...)
	}
	s := string(ini)
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := i + len(old)
		before := i == 0 || !isVersionByte(s[i-1])
		after := j == len(s) || !(isDigit(s[j]) || (s[j] == '.' && j+1 < len(s) && isDigit(s[j+1])))
		b.WriteString(s[:i])
		if before && after {
			b.WriteString(new)
		} else {
			b.WriteString(old)
		}
		s = s[j:]
	}
	return []byte(b.String())
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isVersionByte(c byte) bool { return isDigit(c) || c == '.' }
