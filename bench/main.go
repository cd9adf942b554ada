// Command bench runs ccmirror and the manual procedure it replaces side by
// side, on the same data in one run, and prints the ratios: cold fetch
// against a sequential curl loop over a bandwidth-capped fake GitHub, warm
// re-fetch against cold fetch, verify against sha256sum -c, and install
// against tar -xf + cp + chown -R. Results also go to bench/results.json.
//
// Run it with `make bench` (which builds bin/ccmirror and bin/fakegithub);
// the default is one 1 GiB release, practical on a 2-core machine. The
// scaling table wants several sizes:
//
//	make bench BENCHFLAGS="-sizes 100M,1G,4G"
//
// Each size needs about 4x its bytes of free space in the scratch folder.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

type config struct {
	bin         string
	work        string
	sizes       []int64
	bandwidth   int64
	latency     time.Duration
	concurrency int
	out         string
	keep        bool
	reps        int
}

// row is one line of the results table: ccmirror against its baseline.
type row struct {
	Size        int64   `json:"size_bytes"`
	Name        string  `json:"name"`
	Baseline    string  `json:"baseline"`
	Seconds     float64 `json:"seconds"`
	BaseSeconds float64 `json:"baseline_seconds"`
	Ratio       float64 `json:"ratio"`
	Target      float64 `json:"target_ratio,omitempty"`
	Bytes       int64   `json:"bytes_transferred"`
	BaseBytes   int64   `json:"baseline_bytes_transferred"`
	RSS         int64   `json:"peak_rss_bytes"`
	BaseRSS     int64   `json:"baseline_peak_rss_bytes"`
	Note        string  `json:"note,omitempty"`
}

// scale is one line of the scaling table: cold fetch and install at one
// size, per GiB, with peak RSS.
type scale struct {
	Size           int64   `json:"size_bytes"`
	FetchSeconds   float64 `json:"cold_fetch_seconds"`
	FetchPerGiB    float64 `json:"cold_fetch_seconds_per_gib"`
	FetchRSS       int64   `json:"cold_fetch_peak_rss_bytes"`
	InstallSeconds float64 `json:"install_seconds"`
	InstallPerGiB  float64 `json:"install_seconds_per_gib"`
	InstallRSS     int64   `json:"install_peak_rss_bytes"`
	MaxRSS         int64   `json:"max_peak_rss_bytes"` // of every ccmirror row at this size
}

type results struct {
	When        time.Time `json:"when"`
	Machine     string    `json:"machine"`
	Version     string    `json:"ccmirror_version"`
	Bandwidth   int64     `json:"bandwidth_bytes_per_sec_per_connection"`
	Latency     string    `json:"latency"`
	Concurrency int       `json:"concurrency"`
	Rows        []row     `json:"rows"`
	Scaling     []scale   `json:"scaling"`
}

func main() {
	var c config
	var sizes string
	flag.StringVar(&c.bin, "bin", "bin", "folder with ccmirror and fakegithub")
	flag.StringVar(&c.work, "work", "out/bench", "scratch folder (emptied first)")
	flag.StringVar(&sizes, "sizes", "1G", "comma-separated release sizes, e.g. 100M,1G,4G")
	flag.Int64Var(&c.bandwidth, "bandwidth", 16<<20, "per-connection bandwidth cap of the fake GitHub, bytes/s")
	flag.DurationVar(&c.latency, "latency", 20*time.Millisecond, "latency the fake GitHub adds before each response")
	flag.IntVar(&c.concurrency, "concurrency", 4, "ccmirror fetch --concurrency")
	flag.StringVar(&c.out, "json", "bench/results.json", "where to write the results")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch folder")
	flag.IntVar(&c.reps, "reps", 0, "runs of each side of the verify and install rows, median kept (0: 3 up to 1 GiB, else 1)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := parseSize(s)
		if err != nil {
			fatal(err)
		}
		c.sizes = append(c.sizes, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := results{When: time.Now().UTC(), Machine: machine(c.work), Bandwidth: c.bandwidth,
		Latency: c.latency.String(), Concurrency: c.concurrency}
	if out, err := exec.Command(filepath.Join(c.bin, "ccmirror"), "--version").Output(); err == nil {
		res.Version = strings.TrimSpace(string(out))
	}
	for _, size := range c.sizes {
		rows, err := runSize(ctx, &c, size)
		if err != nil {
			fatal(err)
		}
		res.Rows = append(res.Rows, rows...)
		res.Scaling = append(res.Scaling, scaleOf(size, rows))
	}
	printTable(os.Stdout, &res)
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(c.out, append(b, '\n'), 0o644); err != nil {
		fatal(err)
	}
	fmt.Printf("\nresults written to %s\n", c.out)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// scaleOf picks the scaling line of one size out of its rows.
func scaleOf(size int64, rows []row) scale {
	sc := scale{Size: size}
	gib := float64(size) / (1 << 30)
	for _, r := range rows {
		sc.MaxRSS = max(sc.MaxRSS, r.RSS)
		switch r.Name {
		case "cold fetch":
			sc.FetchSeconds, sc.FetchPerGiB, sc.FetchRSS = r.Seconds, r.Seconds/gib, r.RSS
		case "install":
			sc.InstallSeconds, sc.InstallPerGiB, sc.InstallRSS = r.Seconds, r.Seconds/gib, r.RSS
		}
	}
	return sc
}

// machine describes where the benchmark ran: CPU, cores, memory, kernel
// and the filesystem of the scratch folder.
func machine(work string) string {
	cpu, n := cpuInfo()
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%d", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	fsType := ""
	os.MkdirAll(work, 0o755)
	// df names ext4 as such; stat -f reports every ext* as "ext2/ext3".
	if out, err := exec.Command("df", "--output=fstype", work).Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) > 1 {
			fsType = ", " + f[len(f)-1] + " scratch"
		}
	}
	return fmt.Sprintf("%s, %d cores%s%s%s, %s", cpu, n, mem, kernel, fsType, runtime.Version())
}

func cpuInfo() (string, int) {
	cpu := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "model name") {
				cpu = strings.TrimSpace(strings.SplitN(sc.Text(), ":", 2)[1])
				break
			}
		}
		f.Close()
	}
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "processor\t:")
	}
	if cpu == "" {
		cpu = runtime.GOARCH
	}
	return cpu, n
}

// measured is one timed process (or a sequence of them).
type measured struct {
	secs float64
	rss  int64 // peak resident set of the largest process, bytes
}

// runCmd runs one command and returns its wall time and peak RSS (from the
// child's own rusage).
func runCmd(ctx context.Context, dir string, env []string, name string, args ...string) (measured, []byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	m := measured{secs: time.Since(start).Seconds()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.rss = ru.Maxrss * 1024
		}
	}
	if err != nil {
		return m, out, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return m, out, nil
}

func (m *measured) add(o measured) {
	m.secs += o.secs
	if o.rss > m.rss {
		m.rss = o.rss
	}
}

// fake is a running bin/fakegithub.
type fake struct {
	cmd   *exec.Cmd
	url   string
	stats string
}

func startFake(ctx context.Context, c *config, dir string, blobSize int64) (*fake, error) {
	ready := filepath.Join(dir, "github-url")
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "fakegithub"),
		"-ready-file", ready,
		"-blob-size", fmt.Sprint(blobSize),
		"-bandwidth", fmt.Sprint(c.bandwidth),
		"-latency", c.latency.String())
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; i < 200; i++ {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			st, err := os.ReadFile(ready + ".stats")
			if err != nil {
				return nil, err
			}
			return &fake{cmd: cmd, url: strings.TrimSpace(string(b)), stats: strings.TrimSpace(string(st))}, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("fakegithub did not start")
}

func (f *fake) stop() {
	f.cmd.Process.Signal(syscall.SIGTERM)
	f.cmd.Wait()
}

// servedBytes asks the fake how many asset bytes it has served so far.
func (f *fake) servedBytes() int64 {
	resp, err := http.Get(f.stats)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var s struct {
		AssetBytesServed int64 `json:"asset_bytes_served"`
	}
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return -1
	}
	return s.AssetBytesServed
}

// prime lists every release of the repository once (see runSize).
func prime(f *fake) error {
	resp, err := http.Get(strings.TrimSuffix(f.url, "/") + "/repos/Azure/cyclecloud-slurm/releases?per_page=100")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// releaseURLs lists what the manual procedure downloads for slurm 2.5.0: the
// tag archive, every asset of the release, and the wheel from 2.6.1.
func releaseURLs(f *fake) ([]string, error) {
	get := func(tag string) (map[string]any, error) {
		resp, err := http.Get(strings.TrimSuffix(f.url, "/") + "/repos/Azure/cyclecloud-slurm/releases/tags/" + tag)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var rel map[string]any
		return rel, json.NewDecoder(resp.Body).Decode(&rel)
	}
	rel, err := get("2.5.0")
	if err != nil {
		return nil, err
	}
	var urls []string
	if t, ok := rel["tarball_url"].(string); ok {
		urls = append(urls, t)
	}
	assets, _ := rel["assets"].([]any)
	for _, a := range assets {
		urls = append(urls, a.(map[string]any)["browser_download_url"].(string))
	}
	other, err := get("2.6.1")
	if err != nil {
		return nil, err
	}
	for _, a := range other["assets"].([]any) {
		m := a.(map[string]any)
		if strings.HasPrefix(m["name"].(string), "cyclecloud_api-") {
			urls = append(urls, m["browser_download_url"].(string))
		}
	}
	return urls, nil
}

func runSize(ctx context.Context, c *config, total int64) ([]row, error) {
	dir, err := filepath.Abs(filepath.Join(c.work, fmt.Sprint(total>>20)+"M"))
	if err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	bin, _ := filepath.Abs(c.bin)
	c2 := *c
	c2.bin = bin
	const blobs = 62 // slurm 2.5.0's project.ini
	f, err := startFake(ctx, &c2, dir, total/blobs)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	fmt.Fprintf(os.Stderr, "bench: %d MiB release, fake GitHub at %s\n", total>>20, f.url)

	key := filepath.Join(dir, "key")
	if _, _, err := runCmd(ctx, dir, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", key); err != nil {
		return nil, err
	}
	pub, _ := os.ReadFile(key + ".pub")
	fields := strings.Fields(string(pub))
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("bench namespaces=\"ccmirror\" "+fields[0]+" "+fields[1]+"\n"), 0o644)
	ccm := filepath.Join(bin, "ccmirror")
	var rows []row

	// Manual procedure: one curl after another, like the documented wget loop.
	urls, err := releaseURLs(f)
	if err != nil {
		return nil, err
	}
	// GitHub answers with digests it computed at upload; the fake computes
	// them on first use. Listing every release once before timing anything
	// keeps that out of every row.
	if err := prime(f); err != nil {
		return nil, err
	}
	manual := filepath.Join(dir, "manual")
	os.MkdirAll(filepath.Join(manual, "blobs"), 0o755)
	before := f.servedBytes()
	var curl measured
	for _, u := range urls {
		// --retry like wget, which retries 20 times by default.
		m, _, err := runCmd(ctx, filepath.Join(manual, "blobs"), nil, "curl", "-sSfL", "--retry", "3", "--retry-all-errors", "-O", u)
		if err != nil {
			return nil, err
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
		return nil, err
	}
	coldBytes := f.servedBytes() - before
	limit := float64(coldBytes)/float64(c.bandwidth*int64(c.concurrency)) +
		float64(len(urls)+4)*c.latency.Seconds()/float64(c.concurrency)
	rows = append(rows, row{Size: total, Name: "cold fetch", Baseline: "sequential curl loop",
		Seconds: cold.secs, BaseSeconds: curl.secs, Ratio: cold.secs / curl.secs, Target: 0.35,
		Bytes: coldBytes, BaseBytes: curlBytes, RSS: cold.rss, BaseRSS: curl.rss,
		Note: fmt.Sprintf("physical limit %.1fs, ccmirror at %.2fx of it (target 1.25x: %s)", limit, cold.secs/limit, verdict(cold.secs/limit, 1.25))})

	before = f.servedBytes()
	os.Remove(bundle)
	warm, _, err := runCmd(ctx, dir, nil, ccm, fetchArgs...)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	if _, _, err := runCmd(ctx, dir, nil, ccm, "sync", "--quiet", "--config", cfg); err != nil {
		return nil, err
	}
	before = f.servedBytes()
	syn, _, err := runCmd(ctx, dir, nil, ccm, "sync", "--quiet", "--config", cfg)
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{Size: total, Name: "sync, nothing new", Baseline: "cold fetch",
		Seconds: syn.secs, BaseSeconds: cold.secs, Ratio: syn.secs / cold.secs,
		Bytes: f.servedBytes() - before, BaseBytes: coldBytes, RSS: syn.rss, BaseRSS: cold.rss})

	// verify vs sha256sum -c on the extracted files.
	ext := filepath.Join(dir, "extracted")
	os.MkdirAll(ext, 0o755)
	if _, _, err := runCmd(ctx, dir, nil, "tar", "-xf", bundle, "-C", ext); err != nil {
		return nil, err
	}
	// Sub-second rows are noisy: small sizes take the median of a few runs.
	reps := c.reps
	if reps <= 0 {
		reps = 1
		if total <= 1<<30 {
			reps = 3
		}
	}
	sum, err := median(reps, func(int) (measured, error) {
		dropCaches()
		m, _, err := runCmd(ctx, ext, nil, "sha256sum", "-c", "--quiet", "SHA256SUMS")
		return m, err
	})
	if err != nil {
		return nil, err
	}
	ver, err := median(reps, func(int) (measured, error) {
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, ccm, "verify", "--allowed-signers", allowed, bundle)
		return m, err
	})
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{Size: total, Name: "verify", Baseline: "sha256sum -c",
		Seconds: ver.secs, BaseSeconds: sum.secs, Ratio: ver.secs / sum.secs, Target: 1.3, RSS: ver.rss, BaseRSS: sum.rss})
	os.RemoveAll(ext)

	// install vs tar -xf + cp + chown -R.
	u, _ := user.Current()
	g, _ := user.LookupGroupId(u.Gid)
	owner := u.Username + ":" + g.Name
	man, err := median(reps, func(int) (measured, error) { return manualInstall(ctx, dir, bundle, owner) })
	if err != nil {
		return nil, err
	}
	inst, err := median(reps, func(i int) (measured, error) {
		root := filepath.Join(dir, fmt.Sprintf("root%d", i))
		os.RemoveAll(root)
		os.MkdirAll(root, 0o755)
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, ccm, "install", "--allowed-signers", allowed,
			"--root", root, "--owner", owner, "--builder", "native", bundle)
		os.RemoveAll(root)
		return m, err
	})
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{Size: total, Name: "install", Baseline: "tar -xf + cp + chown -R",
		Seconds: inst.secs, BaseSeconds: man.secs, Ratio: inst.secs / man.secs, Target: 1.2, RSS: inst.rss, BaseRSS: man.rss})
	return rows, nil
}

// manualInstall times the documented procedure on the same bundle: unpack
// the carried files, unpack the source into the version folder, copy the
// blobs, chown everything.
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

// median runs one side of a row reps times and returns the run with the
// median wall time (its RSS the largest seen).
func median(reps int, run func(i int) (measured, error)) (measured, error) {
	var ms []measured
	var rss int64
	for i := 0; i < reps; i++ {
		m, err := run(i)
		if err != nil {
			return m, err
		}
		ms = append(ms, m)
		rss = max(rss, m.rss)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].secs < ms[j].secs })
	m := ms[len(ms)/2]
	m.rss = rss
	return m, nil
}

// dropCaches asks the kernel to drop clean page cache when running as root,
// so read-heavy rows start equally cold; elsewhere both sides run warm.
func dropCaches() {
	exec.Command("sync").Run()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200)
}

func printTable(w io.Writer, r *results) {
	fmt.Fprintf(w, "\nccmirror vs the manual procedure — %s\nfake GitHub: %s/s per connection, +%s latency\n\n",
		r.Machine, mib(r.Bandwidth), r.Latency)
	fmt.Fprintf(w, "%-8s %-17s %-24s %9s %9s %7s %-13s %10s %10s %9s %9s\n",
		"size", "row", "baseline", "ccmirror", "baseline", "ratio", "target", "bytes", "base bytes", "RSS", "base RSS")
	for _, x := range r.Rows {
		target := "-"
		if x.Target > 0 {
			target = fmt.Sprintf("%.2fx ok", x.Target)
			if x.Ratio > x.Target {
				target = fmt.Sprintf("%.2fx MISSED", x.Target)
			}
		}
		fmt.Fprintf(w, "%-8s %-17s %-24s %8.2fs %8.2fs %6.3fx %-13s %10s %10s %9s %9s\n",
			mib(x.Size), x.Name, x.Baseline, x.Seconds, x.BaseSeconds, x.Ratio, target,
			mib(x.Bytes), mib(x.BaseBytes), mib(x.RSS), mib(x.BaseRSS))
		if x.Note != "" {
			fmt.Fprintf(w, "%-8s   %s\n", "", x.Note)
		}
	}
	fmt.Fprintf(w, "\nscaling (time should grow linearly with bytes, memory stay flat; peak RSS target 64 MiB)\n")
	fmt.Fprintf(w, "%-9s %11s %9s %10s %11s %9s %10s %14s\n",
		"size", "cold fetch", "s/GiB", "RSS", "install", "s/GiB", "RSS", "max RSS (all)")
	for _, x := range r.Scaling {
		rss := "ok"
		if x.MaxRSS > 64<<20 {
			rss = "MISSED"
		}
		fmt.Fprintf(w, "%-9s %10.2fs %8.2fs %10s %10.2fs %8.2fs %10s %11s %s\n",
			mib(x.Size), x.FetchSeconds, x.FetchPerGiB, mib(x.FetchRSS),
			x.InstallSeconds, x.InstallPerGiB, mib(x.InstallRSS), mib(x.MaxRSS), rss)
	}
}

func mib(n int64) string {
	switch {
	case n < 0:
		return "-"
	case n >= 1<<30:
		return fmt.Sprintf("%.2fGiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
}
