package blob

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in        string
		want      Location
		prefix    bool
		container string // ContainerURL()
	}{
		{
			in:        "https://acct.blob.core.windows.net/bundles/slurm/slurm-2.5.0.tar",
			want:      Location{Scheme: "https", Host: "acct.blob.core.windows.net", Account: "acct", Container: "bundles", Path: "slurm/slurm-2.5.0.tar"},
			container: "https://acct.blob.core.windows.net/bundles",
		},
		{
			in:     "https://ACCT.blob.core.windows.net/bundles",
			want:   Location{Scheme: "https", Host: "acct.blob.core.windows.net", Account: "acct", Container: "bundles"},
			prefix: true, container: "https://acct.blob.core.windows.net/bundles",
		},
		{
			in:     "https://acct.blob.core.windows.net/bundles/",
			want:   Location{Scheme: "https", Host: "acct.blob.core.windows.net", Account: "acct", Container: "bundles"},
			prefix: true, container: "https://acct.blob.core.windows.net/bundles",
		},
		{
			in:     "https://acct.blob.core.windows.net/bundles/nightly/",
			want:   Location{Scheme: "https", Host: "acct.blob.core.windows.net", Account: "acct", Container: "bundles", Path: "nightly/"},
			prefix: true, container: "https://acct.blob.core.windows.net/bundles",
		},
		{
			in:        "http://127.0.0.1:10000/devstoreaccount1/ccmirror/x.tar?sv=2021-12-02&sr=c&sp=rwc&se=2099-01-01T00%3A00%3A00Z&sig=c2VjcmV0",
			want:      Location{Scheme: "http", Host: "127.0.0.1:10000", PathStyle: true, Account: "devstoreaccount1", Container: "ccmirror", Path: "x.tar", SAS: "sv=2021-12-02&sr=c&sp=rwc&se=2099-01-01T00%3A00%3A00Z&sig=c2VjcmV0"},
			container: "http://127.0.0.1:10000/devstoreaccount1/ccmirror",
		},
		{
			in:        "http://localhost:10000/devstoreaccount1/ccmirror/a/b.tar",
			want:      Location{Scheme: "http", Host: "localhost:10000", PathStyle: true, Account: "devstoreaccount1", Container: "ccmirror", Path: "a/b.tar"},
			container: "http://localhost:10000/devstoreaccount1/ccmirror",
		},
		{
			in:        "http://azurite:10000/devstoreaccount1/ccmirror/b.tar",
			want:      Location{Scheme: "http", Host: "azurite:10000", PathStyle: true, Account: "devstoreaccount1", Container: "ccmirror", Path: "b.tar"},
			container: "http://azurite:10000/devstoreaccount1/ccmirror",
		},
		{
			in:        "http://[::1]:10000/devstoreaccount1/ccmirror/b.tar",
			want:      Location{Scheme: "http", Host: "[::1]:10000", PathStyle: true, Account: "devstoreaccount1", Container: "ccmirror", Path: "b.tar"},
			container: "http://[::1]:10000/devstoreaccount1/ccmirror",
		},
		{
			in:        "https://gov1.blob.core.usgovcloudapi.net/ccmirror/b.tar",
			want:      Location{Scheme: "https", Host: "gov1.blob.core.usgovcloudapi.net", Account: "gov1", Container: "ccmirror", Path: "b.tar"},
			container: "https://gov1.blob.core.usgovcloudapi.net/ccmirror",
		},
		{
			in:        "https://bundles.example.com/ccmirror/b.tar",
			want:      Location{Scheme: "https", Host: "bundles.example.com", Container: "ccmirror", Path: "b.tar"},
			container: "https://bundles.example.com/ccmirror",
		},
		{
			in:        "https://acct.blob.core.windows.net/ccmirror/my%20bundle%231.tar",
			want:      Location{Scheme: "https", Host: "acct.blob.core.windows.net", Account: "acct", Container: "ccmirror", Path: "my bundle#1.tar"},
			container: "https://acct.blob.core.windows.net/ccmirror",
		},
		{
			in:        "https://acct.blob.core.windows.net/$root/x.tar",
			want:      Location{Scheme: "https", Host: "acct.blob.core.windows.net", Account: "acct", Container: "$root", Path: "x.tar"},
			container: "https://acct.blob.core.windows.net/$root",
		},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			loc, err := ParseURL(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if *loc != tc.want {
				t.Fatalf("ParseURL = %+v\nwant       %+v", *loc, tc.want)
			}
			if loc.IsPrefix() != tc.prefix {
				t.Errorf("IsPrefix = %v", loc.IsPrefix())
			}
			if got := loc.ContainerURL(); got != tc.container {
				t.Errorf("ContainerURL = %s, want %s", got, tc.container)
			}
			if strings.Contains(loc.String(), "c2VjcmV0") {
				t.Errorf("String() shows the signature: %s", loc)
			}
			again, err := ParseURL(loc.String())
			if err != nil {
				t.Fatalf("String() %s does not parse: %v", loc, err)
			}
			again.SAS, tc.want.SAS = "", ""
			if *again != tc.want {
				t.Errorf("String() %s parses to %+v", loc, *again)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "missing https:// scheme"},
		{"acct.blob.core.windows.net/c/x", "missing https:// scheme"},
		{"ftp://acct.blob.core.windows.net/c/x", "scheme"},
		{"https:///c/x", "missing host"},
		{"https://acct.blob.core.windows.net", "missing container"},
		{"https://acct.blob.core.windows.net/", "missing container"},
		{"https://acct.blob.core.windows.net/Bundles/x", "invalid container"},
		{"https://acct.blob.core.windows.net/ab/x", "invalid container"},
		{"https://acct.blob.core.windows.net/a--b/x", "invalid container"},
		{"https://acct.blob.core.windows.net/under_score/x", "invalid container"},
		{"https://a.blob.core.windows.net/c1c/x", "invalid account"},
		{"https://acct.blob.core.windows.net/c1c/x?comp=list", "not a SAS token"},
		{"https://acct.blob.core.windows.net/c1c/x?sv=1&sig=", "not a SAS token"},
		{"https://user:pw@acct.blob.core.windows.net/c1c/x", "user information"},
		{"https://acct.blob.core.windows.net/c1c/x#frag", "fragment"},
		{"https://acct.blob.core.windows.net/c1c/a//b", "empty path segment"},
		{"https://acct.blob.core.windows.net/c1c/a/../b", "'..'"},
		{"https://acct.blob.core.windows.net/c1c/./b", "'..'"},
		{"https://acct.blob.core.windows.net/c1c/a%00b", "control character"},
		{"https://acct.blob.core.windows.net/c1c/" + strings.Repeat("x", 1025), "longer than 1024"},
		{"http://127.0.0.1:10000/", "missing account"},
		{"http://127.0.0.1:10000/devstoreaccount1", "missing container"},
		{"http://127.0.0.1:10000/dev_store/c1c/x", "invalid account"},
		{"https://acct.blob.core.windows.net/c1c/x?sig=c2VjcmV0&se=%zz", "malformed query"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseURL(tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrBadURL) || errors.Is(err, ErrUpstream) {
				t.Errorf("error %v: want ErrBadURL only", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error %q shows the signature", err)
			}
		})
	}
}

func TestBlobName(t *testing.T) {
	tests := []struct{ url, file, want string }{
		{"https://acct.blob.core.windows.net/bundles", "/tmp/out/slurm-2.5.0.tar", "slurm-2.5.0.tar"},
		{"https://acct.blob.core.windows.net/bundles/", "slurm-2.5.0.tar", "slurm-2.5.0.tar"},
		{"https://acct.blob.core.windows.net/bundles/nightly/", "/x/slurm-2.5.0.tar", "nightly/slurm-2.5.0.tar"},
		{"https://acct.blob.core.windows.net/bundles/renamed.tar", "/x/slurm-2.5.0.tar", "renamed.tar"},
	}
	for _, tc := range tests {
		loc, err := ParseURL(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := loc.BlobName(tc.file); got != tc.want {
			t.Errorf("BlobName(%s, %s) = %s, want %s", tc.url, tc.file, got, tc.want)
		}
	}
}

func TestIsBlobURL(t *testing.T) {
	for s, want := range map[string]bool{
		"https://acct.blob.core.windows.net/c/x.tar":  true,
		"HTTP://127.0.0.1:10000/devstoreaccount1/c/x": true,
		"slurm-2.5.0.tar":    false,
		"/srv/bundles/x.tar": false,
		"./https:/x":         false,
		"file:///srv/x.tar":  false,
	} {
		if got := IsBlobURL(s); got != want {
			t.Errorf("IsBlobURL(%q) = %v", s, got)
		}
	}
}

func TestSASExpiry(t *testing.T) {
	tests := []struct {
		q    string
		want time.Time
		ok   bool
	}{
		{"se=2030-01-02T03%3A04%3A05Z&sig=x", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), true},
		{"se=2030-01-02T03:04Z&sig=x", time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC), true},
		{"se=2030-01-02&sig=x", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), true},
		{"sig=x", time.Time{}, false},
		{"se=tomorrow&sig=x", time.Time{}, false},
	}
	for _, tc := range tests {
		got, ok := sasExpiry(tc.q)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("sasExpiry(%s) = %v %v, want %v %v", tc.q, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"https://acct.blob.core.windows.net/bundles/slurm/slurm-2.5.0.tar",
		"https://acct.blob.core.windows.net/bundles/",
		"http://127.0.0.1:10000/devstoreaccount1/ccmirror/x.tar?sv=2021-12-02&sig=c2VjcmV0",
		"http://[::1]:10000/devstoreaccount1/ccmirror/b%20c.tar",
		"https://bundles.example.com/$web/a/b/",
		"https://acct.blob.core.windows.net/c1c/a/../b",
		"ftp://x/y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("error %v does not wrap ErrBadURL", err)
			}
			return
		}
		if !validContainer(loc.Container) || len(loc.Path) > maxBlobName {
			t.Fatalf("accepted %+v", *loc)
		}
		again, err := ParseURL(loc.String())
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", loc.String(), s, err)
		}
		a, b := *loc, *again
		a.SAS, b.SAS = "", ""
		if a != b {
			t.Fatalf("%q -> %+v -> %q -> %+v", s, a, loc.String(), b)
		}
		if loc.SAS != "" && strings.Contains(loc.String(), "sig=") && !strings.Contains(loc.String(), "sig=REDACTED") {
			t.Fatalf("String() %q shows a signature", loc.String())
		}
	})
}
