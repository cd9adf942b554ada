package mirror

import (
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRateLimited(t *testing.T) {
	soon := time.Now().Add(3 * time.Second)
	tests := []struct {
		name     string
		status   int
		header   map[string]string
		limited  bool
		minWait  time.Duration
		maxWait  time.Duration
		resetSet bool
	}{
		{name: "primary exhausted", status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(soon.Unix(), 10)},
			limited: true, minWait: time.Second, maxWait: 5 * time.Second, resetSet: true},
		{name: "429 exhausted", status: 429, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(soon.Unix(), 10)},
			limited: true, minWait: time.Second, maxWait: 5 * time.Second, resetSet: true},
		{name: "reset in the past", status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)},
			limited: true, minWait: 0, maxWait: 0, resetSet: true},
		{name: "secondary retry-after", status: 403, header: map[string]string{"Retry-After": "7"}, limited: true, minWait: 7 * time.Second, maxWait: 7 * time.Second},
		{name: "reset far away", status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9223372036854775807"},
			limited: true, minWait: 1000 * time.Hour, maxWait: math.MaxInt64, resetSet: false},
		{name: "exhausted without reset", status: 403, header: map[string]string{"X-RateLimit-Remaining": "0"}, limited: true, minWait: time.Minute, maxWait: time.Minute},
		{name: "forbidden, not a rate limit", status: 403, header: map[string]string{"X-RateLimit-Remaining": "12"}},
		{name: "ok with remaining 0", status: 200, header: map[string]string{"X-RateLimit-Remaining": "0"}},
		{name: "server error", status: 503, header: map[string]string{"Retry-After": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			for k, v := range tt.header {
				resp.Header.Set(k, v)
			}
			wait, reset, limited := rateLimited(resp)
			if limited != tt.limited {
				t.Fatalf("limited = %v, want %v", limited, tt.limited)
			}
			if !limited {
				return
			}
			if wait < tt.minWait || wait > tt.maxWait {
				t.Errorf("wait = %v, want %v..%v", wait, tt.minWait, tt.maxWait)
			}
			if tt.resetSet && reset.Unix() != mustAtoi(t, tt.header["X-RateLimit-Reset"]) {
				t.Errorf("reset = %v, want the header's time", reset)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRetryAfterDate(t *testing.T) {
	resp := &http.Response{StatusCode: 429, Header: http.Header{}}
	resp.Header.Set("Retry-After", time.Now().Add(10*time.Second).UTC().Format(http.TimeFormat))
	d, ok := retryAfter(resp)
	if !ok || d < 8*time.Second || d > 10*time.Second {
		t.Fatalf("retryAfter = %v, %v; want about 10s", d, ok)
	}
	resp.Header.Set("Retry-After", "soon")
	if _, ok := retryAfter(resp); ok {
		t.Fatal("garbage Retry-After accepted")
	}
}

func TestJitterBackoff(t *testing.T) {
	min, max := 100*time.Millisecond, 2*time.Second
	for attempt := 0; attempt < 40; attempt++ {
		ceil := max
		if attempt < 5 {
			ceil = min << attempt
		}
		for i := 0; i < 50; i++ {
			d := jitterBackoff(min, max, attempt)
			if d < ceil/2 || d > ceil {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, d, ceil/2, ceil)
			}
		}
	}
}

func TestContentRangeStart(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"bytes 100-199/200", 100, true},
		{"bytes 0-0/1", 0, true},
		{"bytes 5-9/*", 5, true},
		{"bytes */200", 0, false},
		{"items 1-2/3", 0, false},
		{"bytes -1-2/3", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := contentRangeStart(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("contentRangeStart(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzContentRangeStart(f *testing.F) {
	for _, s := range []string{"bytes 100-199/200", "bytes */1", "bytes 9999999999999999999-1/2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := contentRangeStart(s); ok && n < 0 {
			t.Fatalf("negative start %d from %q", n, s)
		}
	})
}

func TestArchiveURL(t *testing.T) {
	asset := func(u string) []Asset { return []Asset{{Name: "x", BrowserDownloadURL: u}} }
	tests := []struct {
		name string
		rel  Release
		want string
	}{
		{"github.com from asset", Release{Tag: "2.5.0", HTMLURL: "https://github.com/Azure/cyclecloud-slurm/releases/tag/2.5.0",
			Assets: asset("https://github.com/Azure/cyclecloud-slurm/releases/download/2.5.0/slurm.rpm")},
			"https://github.com/Azure/cyclecloud-slurm/archive/refs/tags/2.5.0.tar.gz"},
		{"download host differs from html_url", Release{Tag: "2.0.25", HTMLURL: "https://github.com/Azure/cyclecloud-pbspro/releases/tag/2.0.25",
			Assets: asset("http://127.0.0.1:5555/Azure/cyclecloud-pbspro/releases/download/2.0.25/x.rpm")},
			"http://127.0.0.1:5555/Azure/cyclecloud-pbspro/archive/refs/tags/2.0.25.tar.gz"},
		{"no assets: html_url host", Release{Tag: "v1", HTMLURL: "https://ghe.example.com/hpc/proj/releases/tag/v1"},
			"https://ghe.example.com/hpc/proj/archive/refs/tags/v1.tar.gz"},
		{"path prefix", Release{Tag: "x", HTMLURL: "https://example.com/git/o/r/releases/tag/x"},
			"https://example.com/git/o/r/archive/refs/tags/x.tar.gz"},
		{"escaped tag", Release{Tag: "a#b", HTMLURL: "https://github.com/o/r/releases/tag/a%23b"},
			"https://github.com/o/r/archive/refs/tags/a%23b.tar.gz"},
		{"unusable asset URL falls back", Release{Tag: "1", HTMLURL: "https://github.com/o/r/releases/tag/1", Assets: asset("ftp://x/o/r/releases/download/1/a")},
			"https://github.com/o/r/archive/refs/tags/1.tar.gz"},
		{"nothing usable", Release{Tag: "1", HTMLURL: "https://github.com/o/r"}, ""},
		{"empty", Release{Tag: "1"}, ""},
	}
	for _, tt := range tests {
		got, ok := archiveURL(&tt.rel)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: archiveURL = %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

func TestAssetSHA256(t *testing.T) {
	h := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	tests := map[string]string{
		"sha256:" + h: h,
		"sha256:" + "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08": h,
		"sha512:" + h:            "",
		"sha256:" + h[:63]:       "",
		"sha256:" + h[:63] + "g": "",
		"":                       "",
	}
	for in, want := range tests {
		if got := (Asset{Digest: in}).SHA256(); got != want {
			t.Errorf("SHA256(%q) = %q, want %q", in, got, want)
		}
	}
}

type httpResponse struct {
	status int
	h      map[string]string
}

func (r *httpResponse) build() *http.Response {
	resp := &http.Response{StatusCode: r.status, Header: http.Header{}}
	for k, v := range r.h {
		if v != "" {
			resp.Header.Set(k, v)
		}
	}
	return resp
}
