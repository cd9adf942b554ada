// Command fakegithub serves the githubtest fake GitHub on loopback for
// `make demo` and benchmarks. It prints the API base URL (ending in
// /api/v3/) on stdout, optionally writes it to -ready-file once both hosts
// listen, and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakegithub:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("fakegithub", flag.ContinueOnError)
	apiAddr := fl.String("api-addr", "127.0.0.1:0", "listen address of the API host")
	dlAddr := fl.String("dl-addr", "127.0.0.1:0", "listen address of the download host")
	blobSize := fl.Int64("blob-size", 4096, "size in bytes of every release asset")
	bandwidth := fl.Int64("bandwidth", 0, "download bytes per second per connection (0: unlimited)")
	latency := fl.Duration("latency", 0, "delay before the first byte of every response")
	failRate := fl.Float64("fail-rate", 0, "fraction of requests answered 500/502/503")
	seed := fl.Uint64("seed", 1, "seed of the injected failures")
	readyFile := fl.String("ready-file", "", "write the API base URL to this file once listening")
	noDigests := fl.Bool("no-digests", false, `assets carry "digest": null, as those uploaded before June 2025`)
	ignoreINM := fl.Bool("ignore-if-none-match", false, "answer conditional asset requests in full, as behind a proxy that strips them")
	scanWorld := fl.Bool("scan-world", false, "serve real-shaped node scripts (githubtest.ScanWorld): slurm 4.0.9 and pbspro 2.0.25 reach the network, healthagent 1.0.2 and monitoring 1.0.3 are added")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	if *blobSize < 0 || *bandwidth < 0 || *latency < 0 || *failRate < 0 || *failRate > 1 {
		return fmt.Errorf("-blob-size, -bandwidth and -latency must be >= 0, -fail-rate within 0..1")
	}

	var content []githubtest.Content
	if *scanWorld {
		content = githubtest.ScanWorld()
	}
	srv, err := githubtest.NewServer(githubtest.Options{
		Content:           content,
		BlobSize:          *blobSize,
		APIAddr:           *apiAddr,
		DownloadAddr:      *dlAddr,
		Seed:              *seed,
		NoDigests:         *noDigests,
		IgnoreIfNoneMatch: *ignoreINM,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.SetBandwidth(*bandwidth, *latency)
	srv.SetFailRate(*failRate)

	// A third loopback listener answers GET /stats with the counters, so
	// benchmarks can count the bytes each side pulled.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	stats := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{
			"asset_bytes_served": srv.AssetBytesServed(),
			"requests":           int64(len(srv.Requests())),
		})
	})}
	go stats.Serve(ln)
	defer stats.Close()
	statsURL := "http://" + ln.Addr().String() + "/stats"

	fmt.Println(srv.URL())
	fmt.Fprintf(os.Stderr, "fakegithub: API %s, downloads %s, counters %s\n", srv.URL(), srv.DownloadURL(), statsURL)
	if *readyFile != "" {
		// The counters' URL first: the API URL's file is what waiters poll.
		if err := writeAtomic(*readyFile+".stats", statsURL+"\n"); err != nil {
			return err
		}
		if err := writeAtomic(*readyFile, srv.URL()+"\n"); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	start := time.Now()
	srv.Close()
	fmt.Fprintf(os.Stderr, "fakegithub: stopped (%d requests, %d asset bytes served) in %s\n",
		len(srv.Requests()), srv.AssetBytesServed(), time.Since(start).Round(time.Millisecond))
	return nil
}

// writeAtomic writes data to path through a temporary file and a rename,
// so a reader polling for the file never sees it half written.
func writeAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fakegithub-ready-*")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}
