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
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
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
	rows        []string // -rows: run only these sections
}

// want says whether -rows asks for the section named name (all when empty).
func (c *config) want(name string) bool {
	if len(c.rows) == 0 {
		return true
	}
	for _, r := range c.rows {
		if r == name {
			return true
		}
	}
	return false
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
	// Min and Max (BaseMin, BaseMax) are the fastest and slowest of the
	// interleaved repetitions whose median is Seconds (BaseSeconds).
	Min     float64 `json:"min_seconds,omitempty"`
	Max     float64 `json:"max_seconds,omitempty"`
	BaseMin float64 `json:"baseline_min_seconds,omitempty"`
	BaseMax float64 `json:"baseline_max_seconds,omitempty"`
	// Limit is the physical limit of the row in seconds (from limits
	// measured in the same run), XLimit Seconds/Limit; 0 when none applies.
	Limit  float64 `json:"limit_seconds,omitempty"`
	XLimit float64 `json:"x_limit,omitempty"`
	Note   string  `json:"note,omitempty"`
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
	Limits      []limits  `json:"limits"`
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
	flag.IntVar(&c.reps, "reps", 0, "interleaved runs (A B A B …) of each side of the repeated rows, median kept (0: 5 up to 256 MiB, 3 up to 1 GiB, else 1)")
	var only string
	flag.StringVar(&only, "rows", "", "comma-separated sections to run: fetch,verify,install,status,split,pull,sync (default: all; the bundle is always fetched)")
	flag.Parse()
	if only != "" {
		c.rows = strings.Split(only, ",")
		if c.out == "bench/results.json" {
			c.out = "out/bench-rows.json" // a partial run never replaces the README's results
		}
	}
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
		rows, lim, err := runSize(ctx, &c, size)
		if err != nil {
			fatal(err)
		}
		res.Limits = append(res.Limits, lim)
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
