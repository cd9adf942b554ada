package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

func runSize(ctx context.Context, c *config, total int64) ([]row, limits, error) {
	var lim limits
	dir, err := filepath.Abs(filepath.Join(c.work, fmt.Sprint(total>>20)+"M"))
	if err != nil {
		return nil, lim, err
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, lim, err
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	bin, _ := filepath.Abs(c.bin)
	c2 := *c
	c2.bin = bin

	f, err := startFake(ctx, &c2, dir, total/blobs)
	if err != nil {
		return nil, lim, err
	}
	defer f.stop()
	fmt.Fprintf(os.Stderr, "bench: %d MiB release, fake GitHub at %s\n", total>>20, f.url)

	key := filepath.Join(dir, "key")
	if _, _, err := runCmd(ctx, dir, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", key); err != nil {
		return nil, lim, err
	}
	pub, _ := os.ReadFile(key + ".pub")
	fields := strings.Fields(string(pub))
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("bench namespaces=\"ccmirror\" "+fields[0]+" "+fields[1]+"\n"), 0o644)
	ccm := filepath.Join(bin, "ccmirror")
	var rows []row
	// The physical limits, in this run, on this disk: every row below is
	// also stated as x of the limit that bounds it.
	if lim, err = measureLimits(ctx, dir, total); err != nil {
		return nil, lim, err
	}
	fmt.Fprintf(os.Stderr, "bench: limits: %s\n", lim)

	// Manual procedure: one curl after another, like the documented wget loop.
	urls, err := releaseURLs(f)
	if err != nil {
		return nil, lim, err
	}
	// GitHub answers with digests it computed at upload; the fake computes
	// them on first use. Listing every release once before timing anything
	// keeps that out of every row.
	if err := prime(f); err != nil {
		return nil, lim, err
	}
	manual := filepath.Join(dir, "manual")
	os.MkdirAll(filepath.Join(manual, "blobs"), 0o755)
	before := f.servedBytes()
	var curl measured
	for _, u := range urls {
		if !c.want("fetch") {
			break // -rows without fetch: the bundle is all the other rows need
		}
		// --retry like wget, which retries 20 times by default.
		m, _, err := runCmd(ctx, filepath.Join(manual, "blobs"), nil, "curl", "-sSfL", "--retry", "3", "--retry-all-errors", "-O", u)
		if err != nil {
			return nil, lim, err
		}
		curl.add(m)
	}
	curlBytes := f.servedBytes() - before

	cache := filepath.Join(dir, "cache")
	bundle := filepath.Join(dir, "slurm.tar")
	fetchArgs := []string{"fetch", "--quiet", "--github-url", f.url, "--sign-key", key, "--cache", cache,
		"--concurrency", fmt.Sprint(c.concurrency), "-o", bundle, "slurm@2.5.0"}
	before = f.servedBytes()
	cold, _, err := runCmd(ctx, dir, nil, ccm, fetchArgs...)
	if err != nil {
		return nil, lim, err
	}
	coldBytes := f.servedBytes() - before
	limit := float64(coldBytes)/float64(c.bandwidth*int64(c.concurrency)) +
		float64(len(urls)+4)*c.latency.Seconds()/float64(c.concurrency)
	if !c.want("fetch") {
		return otherRows(ctx, c, dir, ccm, key, allowed, bundle, total, lim, rows)
	}
	rows = append(rows, row{Size: total, Name: "cold fetch", Baseline: "sequential curl loop",
		Seconds: cold.secs, BaseSeconds: curl.secs, Ratio: cold.secs / curl.secs, Target: 0.35,
		Bytes: coldBytes, BaseBytes: curlBytes, RSS: cold.rss, BaseRSS: curl.rss, Limit: limit, XLimit: cold.secs / limit,
		Note: fmt.Sprintf("physical limit %.1fs, ccmirror at %.2fx of it (target 1.1x: %s)", limit, cold.secs/limit, verdict(cold.secs/limit, 1.1))})

	before = f.servedBytes()
	os.Remove(bundle)
	warm, _, err := runCmd(ctx, dir, nil, ccm, fetchArgs...)
	if err != nil {
		return nil, lim, err
	}
	rows = append(rows, row{Size: total, Name: "warm re-fetch", Baseline: "cold fetch",
		Seconds: warm.secs, BaseSeconds: cold.secs, Ratio: warm.secs / cold.secs, Target: 0.05,
		Bytes: f.servedBytes() - before, BaseBytes: coldBytes, RSS: warm.rss, BaseRSS: cold.rss})

	// sync with nothing new: the mirror job on the same cache, primed by
	// one run, then timed on its second run.
	syncOut := filepath.Join(dir, "mirror-out")
	cfg := filepath.Join(dir, "mirror.yaml")
	yaml := fmt.Sprintf("github_url: %s\nsign_key: %s\noutput: %s\ncache: %s\nconcurrency: %d\nprojects:\n  - ref: slurm\n    versions: [\"2.5.0\"]\n",
		f.url, key, syncOut, cache, c.concurrency)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, lim, err
	}
	if _, _, err := runCmd(ctx, dir, nil, ccm, "sync", "--quiet", "--config", cfg); err != nil {
		return nil, lim, err
	}
	before = f.servedBytes()
	syn, _, err := runCmd(ctx, dir, nil, ccm, "sync", "--quiet", "--config", cfg)
	if err != nil {
		return nil, lim, err
	}
	rows = append(rows, row{Size: total, Name: "sync, nothing new", Baseline: "cold fetch",
		Seconds: syn.secs, BaseSeconds: cold.secs, Ratio: syn.secs / cold.secs,
		Bytes: f.servedBytes() - before, BaseBytes: coldBytes, RSS: syn.rss, BaseRSS: cold.rss})

	return otherRows(ctx, c, dir, ccm, key, allowed, bundle, total, lim, rows)
}

// otherRows runs every section after the fetch rows on the bundle fetched.
func otherRows(ctx context.Context, c *config, dir, ccm, key, allowed, bundle string, total int64, lim limits, rows []row) ([]row, limits, error) {
	// Sub-second rows are noisy: small sizes take the median of a few
	// runs, each pair of sides interleaved (A B A B …) so both see the same
	// machine.
	reps := c.reps
	if reps <= 0 {
		switch {
		case total <= 256<<20:
			reps = 5
		case total <= 1<<30:
			reps = 3
		default:
			reps = 1
		}
	}
	if c.want("verify") {
		r, err := verifyRow(ctx, dir, ccm, allowed, bundle, total, reps, lim)
		if err != nil {
			return nil, lim, err
		}
		rows = append(rows, r)
	}
	u, _ := user.Current()
	g, _ := user.LookupGroupId(u.Gid)
	owner := u.Username + ":" + g.Name
	if c.want("install") {
		r, err := installRow(ctx, dir, ccm, allowed, owner, bundle, total, reps, lim)
		if err != nil {
			return nil, lim, err
		}
		rows = append(rows, r)
	}
	// status and plan on a staged tree vs sha256sum of its blobs (what a
	// check without the hash cache must read), caches dropped before each.
	if c.want("status") {
		sp, err := statusPlanRows(ctx, dir, ccm, allowed, owner, bundle, total, reps, lim)
		if err != nil {
			return nil, lim, err
		}
		rows = append(rows, sp...)
	}
	if c.want("split") {
		sv, err := splitVerifyRow(ctx, dir, ccm, key, allowed, bundle, total, reps, lim)
		if err != nil {
			return nil, lim, err
		}
		rows = append(rows, sv)
	}
	if c.want("pull") {
		rows = append(rows, pullRow(ctx, dir, ccm, allowed, bundle, total, reps, lim)...)
	}
	// The 9 releases get blobs of their own fake GitHub, at most 256 MiB a
	// release, so the row fits the scratch space at every size.
	if c.want("sync") {
		sm, err := syncManyRows(ctx, c, dir, ccm, key, total, min(total, 256<<20)/blobs, reps)
		if err != nil {
			return nil, lim, err
		}
		rows = append(rows, sm...)
	}
	return rows, lim, nil
}

// verifyRow: verify against sha256sum -c on the extracted files.
func verifyRow(ctx context.Context, dir, ccm, allowed, bundle string, total int64, reps int, lim limits) (row, error) {
	ext := filepath.Join(dir, "extracted")
	os.MkdirAll(ext, 0o755)
	defer os.RemoveAll(ext)
	if _, _, err := runCmd(ctx, dir, nil, "tar", "-xf", bundle, "-C", ext); err != nil {
		return row{}, err
	}
	ver, sum, err := pair(reps, func(int) (measured, error) {
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, ccm, "verify", "--allowed-signers", allowed, bundle)
		return m, err
	}, func(int) (measured, error) {
		dropCaches()
		m, _, err := runCmd(ctx, ext, nil, "sha256sum", "-c", "--quiet", "SHA256SUMS")
		return m, err
	})
	if err != nil {
		return row{}, err
	}
	vr := pairRow(total, "verify", "sha256sum -c", ver, sum, max(secs(total, lim.Read), secs(total, lim.SHA)))
	vr.Target = 1.3
	return vr, nil
}

// installRow: install against the manual procedure (tar -xf + cp +
// chown -R + sync: ccmirror's install is durable when it returns, so the
// manual one is timed until it is too).
func installRow(ctx context.Context, dir, ccm, allowed, owner, bundle string, total int64, reps int, lim limits) (row, error) {
	inst, man, err := pair(reps, func(i int) (measured, error) {
		root := filepath.Join(dir, fmt.Sprintf("root%d", i))
		os.RemoveAll(root)
		os.MkdirAll(root, 0o755)
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, ccm, "install", "--allowed-signers", allowed,
			"--root", root, "--owner", owner, "--builder", "native", bundle)
		os.RemoveAll(root)
		return m, err
	}, func(int) (measured, error) { return manualInstall(ctx, dir, bundle, owner) })
	if err != nil {
		return row{}, err
	}
	// The limit of issue 15: reading and hashing each byte once (one
	// after the other on one core) or writing it, whichever is slower.
	ir := pairRow(total, "install", "tar -xf + cp + chown -R + sync", inst, man,
		max(secs(total, lim.Read)+secs(total, lim.SHA), secs(total, lim.Write)))
	ir.Target = 0.75
	ir.Note = "limit: max(disk read + SHA-256 of one core, disk write); target at 1 GiB and above: 1.3x the limit"
	return ir, nil
}

// manualInstall times the documented procedure on the same bundle: unpack
// the carried files, unpack the source into the version folder, copy the
// blobs, chown everything, sync.
func manualInstall(ctx context.Context, dir, bundle, owner string) (measured, error) {
	var total measured
	x := filepath.Join(dir, "manual-x")
	root := filepath.Join(dir, "manual-root", "work", "staging", "projects", "slurm")
	os.RemoveAll(x)
	os.RemoveAll(filepath.Join(dir, "manual-root"))
	os.MkdirAll(x, 0o755)
	os.MkdirAll(filepath.Join(root, "2.5.0"), 0o755)
	os.MkdirAll(filepath.Join(root, "blobs"), 0o755)
	dropCaches()
	steps := [][]string{
		{"tar", "-xf", bundle, "-C", x},
		{"tar", "-xzf", filepath.Join(x, "projects/slurm/2.5.0/source.tar.gz"), "--strip-components=1", "-C", filepath.Join(root, "2.5.0")},
		{"sh", "-c", "cp " + filepath.Join(x, "projects/slurm/blobs") + "/* " + filepath.Join(root, "blobs") + "/"},
		{"chown", "-R", owner, filepath.Join(dir, "manual-root", "work", "staging")},
		{"sync"},
	}
	for _, s := range steps {
		m, _, err := runCmd(ctx, dir, nil, s[0], s[1:]...)
		if err != nil {
			return total, err
		}
		total.add(m)
	}
	return total, nil
}

func verdict(ratio, target float64) string {
	if ratio > target {
		return "MISSED"
	}
	return "ok"
}

// blobs is how many blobs slurm 2.5.0's project.ini names: the release
// every size is spread over.
const blobs = 62
