package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
)

// azuriteKey is Azurite's well-known development account key.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azurite is a Blob endpoint for the pull row: CCMIRROR_AZURITE_URL, or one
// started with .ci/azurite.sh for the run.
type azurite struct {
	url  string
	stop func()
}

func startAzurite(ctx context.Context, dir string) (*azurite, error) {
	if u := os.Getenv("CCMIRROR_AZURITE_URL"); u != "" {
		return &azurite{url: strings.TrimSuffix(u, "/"), stop: func() {}}, nil
	}
	script, err := filepath.Abs(".ci/azurite.sh")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("no CCMIRROR_AZURITE_URL and no %s", script)
	}
	adir := filepath.Join(dir, "azurite")
	out, err := exec.CommandContext(ctx, "bash", script, "start", adir).Output()
	if err != nil {
		return nil, fmt.Errorf("azurite.sh start: %v", err)
	}
	var u string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if v, ok := strings.CutPrefix(line, "AZURITE_BLOB_URL="); ok {
			u = strings.Trim(v, `"'`)
		}
	}
	if u == "" {
		exec.Command("bash", script, "stop", adir).Run()
		return nil, fmt.Errorf("azurite.sh start printed no AZURITE_BLOB_URL")
	}
	return &azurite{url: u, stop: func() { exec.Command("bash", script, "stop", adir).Run() }}, nil
}

// blobSAS is a read SAS for one blob of Azurite's account.
func blobSAS(cont, name string) (string, error) {
	cred, err := service.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		return "", err
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-5 * time.Minute).UTC(),
		ExpiryTime:    time.Now().Add(6 * time.Hour).UTC(),
		Permissions:   (&sas.BlobPermissions{Read: true}).String(),
		ContainerName: cont,
		BlobName:      name,
	}.SignWithSharedKey(cred)
	if err != nil {
		return "", err
	}
	return qp.Encode(), nil
}

// pullRow: ccmirror pull (ranged GETs, verified as it arrives) against one
// curl GET of the same blob with a SAS, to disk, and against 8 curl
// processes each GETting an eighth of it at once (rangedCurl), each pair
// interleaved.
func pullRow(ctx context.Context, dir, ccm, allowed, bundle string, size int64, reps int, lim limits) []row {
	const ways = 8
	rangedName := fmt.Sprintf("%d-way ranged curl", ways)
	skip := func(why string) []row {
		return []row{
			{Size: size, Name: "pull (Azurite)", Baseline: "curl GET with SAS + sync", BaseBytes: -1, Bytes: -1, Note: "skipped: " + why},
			{Size: size, Name: "pull vs " + rangedName, Baseline: rangedName, BaseBytes: -1, Bytes: -1, Note: "skipped: " + why},
		}
	}
	if _, err := exec.LookPath("curl"); err != nil {
		return skip("curl not found")
	}
	az, err := startAzurite(ctx, dir)
	if err != nil {
		return skip(err.Error() + " (install Azurite: make test does)")
	}
	defer az.stop()
	b := make([]byte, 5)
	rand.Read(b)
	cont := "bench-" + hex.EncodeToString(b)
	env := []string{"AZURE_STORAGE_KEY=" + azuriteKey, "AZURE_STORAGE_CONNECTION_STRING="}
	if _, _, err := runCmd(ctx, dir, env, ccm, "push", "--quiet", bundle, az.url+"/"+cont+"/"); err != nil {
		return skip("push to Azurite failed: " + oneLine(err.Error()))
	}
	name := filepath.Base(bundle)
	q, err := blobSAS(cont, name)
	if err != nil {
		return skip(err.Error())
	}
	url := az.url + "/" + cont + "/" + name + "?" + q
	out := filepath.Join(dir, "pulled.tar")
	pullSide := func(int) (measured, error) {
		os.Remove(out)
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, ccm, "pull", "--quiet", "--allowed-signers", allowed, url, "-o", out)
		return m, err
	}
	pull, curl, err := pair(reps, pullSide, func(int) (measured, error) {
		os.Remove(out)
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, "curl", "-sSf", "-o", out, url)
		if err != nil {
			return m, err
		}
		return fsynced(ctx, dir, m, out)
	})
	os.Remove(out)
	if err != nil {
		return skip(oneLine(err.Error()))
	}
	pull2, ranged, err := pair(reps, pullSide, func(int) (measured, error) {
		os.Remove(out)
		removeParts(out, ways)
		dropCaches()
		return rangedCurl(ctx, dir, url, out, size, ways)
	})
	os.Remove(out)
	removeParts(out, ways)
	if err != nil {
		return skip(oneLine(err.Error()))
	}
	limit := max(secs(size, lim.Write), secs(size, lim.SHA))
	r := pairRow(size, "pull (Azurite)", "curl GET with SAS + sync", pull, curl, limit)
	r.Target = 1.0
	r.Note = "ccmirror pull verifies the bundle as it arrives and fsyncs it; curl only writes it, then `sync FILE` fsyncs it. Limit: max(disk write, SHA-256 of one core)"
	r2 := pairRow(size, "pull vs "+rangedName, rangedName, pull2, ranged, limit)
	r2.Target = 1.2
	r2.Note = fmt.Sprintf("baseline: %d curl processes at once, each GETs one %dth of the blob (--range) to its own part file; timed until the last exits and `sync` has fsynced the parts. Limit as above", ways, ways)
	return []row{r, r2}
}

// rangedCurl GETs the blob at url as n ranges at once, one curl process
// each writing out.partI, and returns the time until the last of them
// exits (every part on disk) and the largest peak RSS among them.
func rangedCurl(ctx context.Context, dir, url, out string, size int64, n int) (measured, error) {
	per := (size + int64(n) - 1) / int64(n)
	type done struct {
		m   measured
		err error
	}
	ch := make(chan done, n)
	start := time.Now()
	started := 0
	for i := range n {
		a, z := int64(i)*per, min(int64(i+1)*per, size)-1
		if a > z {
			break
		}
		started++
		go func() {
			m, _, err := runCmd(ctx, dir, nil, "curl", "-sSf", "--range", fmt.Sprintf("%d-%d", a, z), "-o", fmt.Sprintf("%s.part%d", out, i), url)
			ch <- done{m, err}
		}()
	}
	var m measured
	var first error
	for range started {
		d := <-ch
		m.rss = max(m.rss, d.m.rss)
		if d.err != nil && first == nil {
			first = d.err
		}
	}
	if first != nil {
		return m, first
	}
	parts := make([]string, started)
	for i := range parts {
		parts[i] = fmt.Sprintf("%s.part%d", out, i)
	}
	m.secs = time.Since(start).Seconds()
	return fsynced(ctx, dir, m, parts...)
}

// fsynced adds to m the time `sync FILE…` takes to put files on disk:
// pull fsyncs what it wrote before it renames it, curl does not, so a
// baseline that only wrote to the page cache would be timed short of the
// disk.
func fsynced(ctx context.Context, dir string, m measured, files ...string) (measured, error) {
	s, _, err := runCmd(ctx, dir, nil, "sync", files...)
	m.add(s)
	return m, err
}

// removeParts removes the part files rangedCurl writes.
func removeParts(out string, n int) {
	for i := range n {
		os.Remove(fmt.Sprintf("%s.part%d", out, i))
	}
}

// splitVerifyRow: verify of the bundle cut into parts (its .parts list)
// against verify of the joined bundle, interleaved.
func splitVerifyRow(ctx context.Context, dir, ccm, key, allowed, bundle string, size int64, reps int, lim limits) (row, error) {
	pdir := filepath.Join(dir, "parts")
	os.MkdirAll(pdir, 0o755)
	defer os.RemoveAll(pdir)
	partSize := max(size/4, 1<<20)
	if _, _, err := runCmd(ctx, dir, nil, ccm, "split", "--size", fmt.Sprintf("%dK", partSize>>10), "--sign-key", key, "--dir", pdir, bundle); err != nil {
		return row{}, err
	}
	list := filepath.Join(pdir, filepath.Base(bundle)+".parts")
	sp, joined, err := pair(reps, func(int) (measured, error) {
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, ccm, "verify", "--allowed-signers", allowed, list)
		return m, err
	}, func(int) (measured, error) {
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, ccm, "verify", "--allowed-signers", allowed, bundle)
		return m, err
	})
	if err != nil {
		return row{}, err
	}
	r := pairRow(size, "split verify", "verify of joined bundle", sp, joined, max(secs(size, lim.Read), secs(size, lim.SHA)))
	r.Target = 1.25
	r.Note = "4 parts. Limit: max(disk read, SHA-256 of one core)"
	return r, nil
}

// syncManyRows: the mirror job over 9 project versions against one, on a
// fake GitHub of its own (blobs of blobSize): the first run of the 9 against
// its bandwidth limit, then idle runs, 9 against 1, interleaved.
func syncManyRows(ctx context.Context, c *config, dir, ccm, key string, size, blobSize int64, reps int) ([]row, error) {
	sdir := filepath.Join(dir, "sync-many")
	os.MkdirAll(sdir, 0o755)
	defer os.RemoveAll(sdir)
	f, err := startFake(ctx, c, sdir, blobSize)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	if err := prime(f); err != nil {
		return nil, err
	}
	cfg := func(name, projects string) (string, error) {
		p := filepath.Join(sdir, name+".yaml")
		y := fmt.Sprintf("github_url: %s\nsign_key: %s\noutput: %s\ncache: %s\nconcurrency: %d\nprojects:\n%s",
			f.url, key, filepath.Join(sdir, name+"-out"), filepath.Join(sdir, name+"-cache"), c.concurrency, projects)
		return p, os.WriteFile(p, []byte(y), 0o644)
	}
	many, err := cfg("nine", "  - ref: slurm\n    versions: [\"2.5.0\", \"2.6.1\", \"2.7.0\", \"2.7.4\", \"3.0.12\", \"4.0.9\"]\n"+
		"  - ref: gridengine\n    versions: [latest]\n  - ref: hpcpack\n    versions: [latest]\n  - ref: pbspro\n    versions: [latest]\n")
	if err != nil {
		return nil, err
	}
	single, err := cfg("one", "  - ref: slurm\n    versions: [\"2.5.0\"]\n")
	if err != nil {
		return nil, err
	}
	before, reqs0 := f.counters()
	first, _, err := runCmd(ctx, sdir, nil, ccm, "sync", "--quiet", "--config", many)
	if err != nil {
		return nil, err
	}
	after, reqs1 := f.counters()
	got, reqs := after-before, reqs1-reqs0
	limit := float64(got)/float64(c.bandwidth*int64(c.concurrency)) +
		float64(reqs)*c.latency.Seconds()/float64(c.concurrency)
	if _, _, err := runCmd(ctx, sdir, nil, ccm, "sync", "--quiet", "--config", single); err != nil {
		return nil, err
	}
	r1 := row{Size: size, Name: "sync first, 9 vers", Baseline: "its bandwidth limit",
		Seconds: first.secs, BaseSeconds: limit, Ratio: first.secs / limit, Target: 1.15,
		Bytes: got, BaseBytes: got, RSS: first.rss, BaseRSS: -1, Limit: limit, XLimit: first.secs / limit,
		Note: fmt.Sprintf("blobs of %s each; limit: bytes / (%s/s x %d connections) + %d requests x %s / %d", mib(blobSize), mib(c.bandwidth), c.concurrency, reqs, c.latency, c.concurrency)}
	// Idle runs take a tenth of a second: at least 5 pairs at every size.
	idle9, idle1, err := pair(max(reps, 5), func(int) (measured, error) {
		m, _, err := runCmd(ctx, sdir, nil, ccm, "sync", "--quiet", "--config", many)
		return m, err
	}, func(int) (measured, error) {
		m, _, err := runCmd(ctx, sdir, nil, ccm, "sync", "--quiet", "--config", single)
		return m, err
	})
	if err != nil {
		return nil, err
	}
	r2 := pairRow(size, "sync idle, 9 vers", "sync idle, 1 version", idle9, idle1, 0)
	r2.Target = 2
	return []row{r1, r2}, nil
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// statusPlanRows stages the bundle once, runs status once to fill the hash
// cache, then times status and plan (each against a cycle_server that
// knows no project, so plan does all its reading and asks for nothing)
// interleaved with sha256sum of the staged blobs. The limit is a stat-only
// walk: nothing that did not change needs reading.
func statusPlanRows(ctx context.Context, dir, ccm, allowed, owner, bundle string, size int64, reps int, lim limits) ([]row, error) {
	root := filepath.Join(dir, "status-root")
	state := filepath.Join(dir, "status-state")
	os.RemoveAll(root)
	os.RemoveAll(state)
	defer os.RemoveAll(root)
	defer os.RemoveAll(state)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(state, 0o700); err != nil {
		return nil, err
	}
	if _, out, err := runCmd(ctx, dir, nil, ccm, "install", "--allowed-signers", allowed, "--root", root,
		"--state-dir", state, "--owner", owner, "--builder", "native", bundle); err != nil {
		return nil, fmt.Errorf("status row: install: %w: %s", err, oneLine(string(out)))
	}
	blobs, _ := filepath.Glob(filepath.Join(root, "work", "staging", "projects", "*", "blobs", "*"))
	if len(blobs) == 0 {
		return nil, fmt.Errorf("status row: no staged blobs under %s", root)
	}
	cs := filepath.Join(dir, "cycle_server")
	if err := os.WriteFile(cs, []byte("#!/bin/sh\necho '[]'\n"), 0o755); err != nil {
		return nil, err
	}
	status := []string{"status", "--root", root, "--state-dir", state}
	// The first status after install hashes everything (files written
	// less than 2 s ago are not remembered): wait that out, then prime.
	time.Sleep(2100 * time.Millisecond)
	if _, out, err := runCmd(ctx, dir, nil, ccm, status...); err != nil {
		return nil, fmt.Errorf("status row: %w: %s", err, oneLine(string(out)))
	}
	manual := func(int) (measured, error) {
		dropCaches()
		m, _, err := runCmd(ctx, dir, nil, "sha256sum", blobs...)
		return m, err
	}
	walk := func() float64 {
		dropCaches()
		start := time.Now()
		_ = filepath.WalkDir(root, func(string, fs.DirEntry, error) error { return nil })
		return time.Since(start).Seconds()
	}
	var rows []row
	for _, c := range []struct {
		name string
		args []string
	}{
		{"status (hash cache warm)", status},
		{"plan (hash cache warm)", []string{"plan", "--root", root, "--state-dir", state, "--cycle-server", cs, "-o", filepath.Join(dir, "request.json")}},
	} {
		a, b, err := pair(reps, func(int) (measured, error) {
			dropCaches()
			m, out, err := runCmd(ctx, dir, nil, ccm, c.args...)
			if err != nil {
				return m, fmt.Errorf("%s: %w: %s", c.name, err, oneLine(string(out)))
			}
			return m, nil
		}, manual)
		if err != nil {
			return nil, err
		}
		r := pairRow(size, c.name, "sha256sum of the staged blobs", a, b, walk())
		r.Target = 0.05
		r.Note = "limit: a stat-only walk of the staged tree"
		rows = append(rows, r)
	}
	return rows, nil
}
