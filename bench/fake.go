package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

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
func (f *fake) servedBytes() int64 { b, _ := f.counters(); return b }

// counters asks the fake how many asset bytes it has served so far and how
// many requests it has answered.
func (f *fake) counters() (int64, int64) {
	resp, err := http.Get(f.stats)
	if err != nil {
		return -1, -1
	}
	defer resp.Body.Close()
	var s struct {
		AssetBytesServed int64 `json:"asset_bytes_served"`
		Requests         int64 `json:"requests"`
	}
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return -1, -1
	}
	return s.AssetBytesServed, s.Requests
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
