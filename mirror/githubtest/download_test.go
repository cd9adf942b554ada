package githubtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"testing"
)

func TestRangeRequests(t *testing.T) {
	s := newTestServer(t, Options{BlobSize: 200_000})
	const repo, tag, name = "cyclecloud-slurm", "3.0.12", "azure-slurm-pkg-3.0.12.tar.gz"
	full := readAsset(t, s, repo, tag, name)
	u := assetInfo(t, s, repo, tag, name).URL
	for _, tc := range []struct {
		rng        string
		status     int
		lo, hi     int // expected body = full[lo:hi]
		contentRng string
	}{
		{"", 200, 0, 200_000, ""},
		{"bytes=0-9", 206, 0, 10, "bytes 0-9/200000"},
		{"bytes=65530-65545", 206, 65530, 65546, "bytes 65530-65545/200000"}, // across a generator block
		{"bytes=150000-", 206, 150000, 200_000, "bytes 150000-199999/200000"},
		{"bytes=-100", 206, 199_900, 200_000, "bytes 199900-199999/200000"},
		{"bytes=199999-300000", 206, 199_999, 200_000, "bytes 199999-199999/200000"},
		{"bytes=200000-", 416, 0, 0, "bytes */200000"},
	} {
		t.Run(tc.rng, func(t *testing.T) {
			resp, body := get(t, u, "Range", tc.rng)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Content-Range"); got != tc.contentRng {
				t.Errorf("Content-Range %q, want %q", got, tc.contentRng)
			}
			if tc.status == 416 {
				return
			}
			if !bytes.Equal(body, full[tc.lo:tc.hi]) {
				t.Errorf("body is not bytes %d..%d of the asset", tc.lo, tc.hi)
			}
			if resp.Header.Get("Content-Length") != strconv.Itoa(tc.hi-tc.lo) || resp.Header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("Content-Length %s Accept-Ranges %q", resp.Header.Get("Content-Length"), resp.Header.Get("Accept-Ranges"))
			}
		})
	}
}

func TestETagAndConditionalRequests(t *testing.T) {
	s := newTestServer(t, Options{})
	info := assetInfo(t, s, "cyclecloud-gridengine", "2.1.0", "sge-2011.11-64.tgz")
	resp, body := get(t, info.URL)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag != `"`+info.SHA256+`"` || hexSum(body) != info.SHA256 {
		t.Fatalf("status %d ETag %s, body sha256 %s, digest %s", resp.StatusCode, etag, hexSum(body), info.SHA256)
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err != nil || lm.IsZero() {
		t.Fatalf("Last-Modified %q: %v", resp.Header.Get("Last-Modified"), err)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=sge-2011.11-64.tgz" {
		t.Errorf("Content-Disposition %q", cd)
	}
	served := s.AssetBytesServed()
	for _, tc := range []struct {
		name   string
		hdr    []string
		status int
		size   int
	}{
		{"If-None-Match same", []string{"If-None-Match", etag}, 304, 0},
		{"If-None-Match list", []string{"If-None-Match", `"x", ` + etag}, 304, 0},
		{"If-None-Match other", []string{"If-None-Match", `"0000"`}, 200, 4096},
		{"If-Range same", []string{"Range", "bytes=10-19", "If-Range", etag}, 206, 10},
		{"If-Range stale", []string{"Range", "bytes=10-19", "If-Range", `"0000"`}, 200, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, info.URL, tc.hdr...)
			if resp.StatusCode != tc.status || len(body) != tc.size {
				t.Fatalf("status %d with %d bytes, want %d with %d", resp.StatusCode, len(body), tc.status, tc.size)
			}
		})
	}
	if got := s.AssetBytesServed() - served; got != 4096+10+4096 {
		t.Errorf("conditional requests served %d asset bytes, want %d", got, 4096+10+4096)
	}

	// API responses carry an ETag too, and answer 304 to it.
	u := s.URL() + "repos/Azure/cyclecloud-slurm/releases/latest"
	resp, _ = get(t, u)
	api := resp.Header.Get("ETag")
	if api == "" {
		t.Fatal("API response without ETag")
	}
	resp, body = get(t, u, "If-None-Match", api, "Authorization", "token x")
	if resp.StatusCode != 304 || len(body) != 0 {
		t.Fatalf("API conditional: %d with %d bytes", resp.StatusCode, len(body))
	}
}

func TestSameAssetSameBytesAcrossReleases(t *testing.T) {
	s := newTestServer(t, Options{})
	const name = "slurm-19.05.8-1.el7.x86_64.rpm"
	a := assetInfo(t, s, "cyclecloud-slurm", "2.5.0", name)
	b := assetInfo(t, s, "cyclecloud-slurm", "2.6.1", name)
	if a.SHA256 != b.SHA256 || a.ID == b.ID || a.URL == b.URL {
		t.Fatalf("2.5.0 %+v vs 2.6.1 %+v: want same digest, distinct ids and URLs", a, b)
	}
	_, ba := get(t, a.URL)
	_, bb := get(t, b.URL)
	if !bytes.Equal(ba, bb) || hexSum(ba) != a.SHA256 {
		t.Fatal("the same asset on two releases differs")
	}
	other := assetInfo(t, s, "cyclecloud-slurm", "2.5.0", "slurm-20.11.7-1.el7.x86_64.rpm")
	if other.SHA256 == a.SHA256 {
		t.Fatal("two different assets have the same content")
	}
}

func TestBigAssetStreams(t *testing.T) {
	const big = 48 << 20
	s := newTestServer(t, Options{SizeFor: func(repo, tag, asset string) int64 {
		if repo == "Azure/cyclecloud-slurm" && asset == "azure_slurm_exporter-0.2.0.tar.gz" {
			return big
		}
		return -1
	}})
	info := assetInfo(t, s, "cyclecloud-slurm", "4.0.9", "azure_slurm_exporter-0.2.0.tar.gz")
	if info.Size != big || assetInfo(t, s, "cyclecloud-slurm", "4.0.9", "azure-slurm-pkg-4.0.9.tar.gz").Size != 4096 {
		t.Fatalf("SizeFor not applied: %+v", info)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.Get(info.URL)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != big {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if got := hex.EncodeToString(h.Sum(nil)); got != info.SHA256 {
		t.Fatalf("sha256 %s, digest %s", got, info.SHA256)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > big/4 {
		t.Fatalf("heap grew by %d bytes serving a %d byte asset", grew, big)
	}
	if s.AssetBytesServed() != big {
		t.Fatalf("AssetBytesServed = %d, want %d", s.AssetBytesServed(), big)
	}
}

func TestGenReaderSeekMatchesStream(t *testing.T) {
	seed := contentSeed("Azure/x", "y")
	const size = 3*genBlock + 123
	full, err := io.ReadAll(newGenReader(seed, size))
	if err != nil || len(full) != size {
		t.Fatalf("read %d: %v", len(full), err)
	}
	if bytes.Equal(full[:genBlock], full[genBlock:2*genBlock]) {
		t.Fatal("blocks repeat")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	g := newGenReader(seed, size)
	for i := 0; i < 200; i++ {
		off := rng.Int64N(size + 10)
		n := rng.IntN(2*genBlock) + 1
		if _, err := g.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, n)
		got, _ := io.ReadFull(g, buf)
		want := full[min(off, size):min(off+int64(n), size)]
		if !bytes.Equal(buf[:got], want) {
			t.Fatalf("read %d at %d differs from the stream", n, off)
		}
	}
	// A different asset name gives different bytes.
	other, _ := io.ReadAll(newGenReader(contentSeed("Azure/x", "z"), 64))
	if bytes.Equal(other, full[:64]) {
		t.Fatal("content does not depend on the asset name")
	}
}

func TestDownloadHostNotFound(t *testing.T) {
	s := newTestServer(t, Options{})
	for _, p := range []string{
		"Azure/cyclecloud-slurm/releases/download/2.5.0/nope.rpm",
		"Azure/cyclecloud-slurm/releases/download/9.9.9/slurm-19.05.8-1.el7.x86_64.rpm",
		// the wheel is not an asset of 2.5.0
		"Azure/cyclecloud-slurm/releases/download/2.5.0/cyclecloud_api-8.1.0-py2.py3-none-any.whl",
		"Azure/cyclecloud-slurm/archive/refs/tags/9.9.9.tar.gz",
		"Azure/nope/archive/refs/tags/2.5.0.tar.gz",
		"x",
	} {
		if resp, _ := get(t, s.DownloadURL()+p); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
	if got := s.AssetBytesServed(); got != 0 {
		t.Errorf("404s counted %d asset bytes", got)
	}
}
