package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

const testKey = "a2V5a2V5a2V5a2V5a2V5a2V5" // base64 of "keykeykeykeykeykeykey"

func TestParseConnectionString(t *testing.T) {
	tests := []struct {
		in      string
		want    connString
		wantErr string
	}{
		{in: "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + testKey + ";EndpointSuffix=core.windows.net",
			want: connString{AccountName: "acct", AccountKey: testKey}},
		{in: " AccountName = acct ; AccountKey = " + testKey + " ; ",
			want: connString{AccountName: "acct", AccountKey: testKey}},
		{in: "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=?sv=2021&sig=c2ln",
			want: connString{SAS: "sv=2021&sig=c2ln"}},
		{in: "UseDevelopmentStorage=true",
			want: connString{AccountName: devAccount, AccountKey: devKey}},
		{in: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + devKey + ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
			want: connString{AccountName: devAccount, AccountKey: devKey}},
		{in: "AccountName=acct", wantErr: "needs AccountName and AccountKey"},
		{in: "AccountKey=" + testKey, wantErr: "needs AccountName and AccountKey"},
		{in: "AccountName=acct;AccountKey=not*base64", wantErr: "not base64"},
		{in: "AccountName=acct;AccountKey", wantErr: "segment 2 has no '='"},
		{in: "AccountName=acct;AccountKey=" + testKey + ";Colour=blue", wantErr: "segment 3 has an unknown key"},
		{in: "SharedAccessSignature=sv=2021", wantErr: "no sig="},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseConnectionString(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "base64") && strings.Contains(err.Error(), "not*base64") {
					t.Errorf("error shows the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseConnectionString(f *testing.F) {
	f.Add("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + testKey + ";EndpointSuffix=core.windows.net")
	f.Add("UseDevelopmentStorage=true")
	f.Add("SharedAccessSignature=sv=1&sig=abc;BlobEndpoint=https://x/")
	f.Add("AccountName=a;AccountKey=%%%")
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := parseConnectionString(s)
		if err != nil {
			// A message never repeats a value from the string, except key names.
			for _, part := range strings.Split(s, ";") {
				k, v, ok := strings.Cut(part, "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "AccountKey") && len(strings.TrimSpace(v)) > 8 && strings.Contains(err.Error(), strings.TrimSpace(v)) {
					t.Fatalf("error %q shows the key", err)
				}
			}
			return
		}
		if cs.SAS == "" && (cs.AccountName == "" || cs.AccountKey == "") {
			t.Fatalf("accepted %q without a usable credential: %+v", s, cs)
		}
	})
}

func TestCredentialOrder(t *testing.T) {
	sasURL := "http://127.0.0.1:10000/devstoreaccount1/c1c/x.tar?sv=2021-12-02&se=2099-01-01&sr=c&sp=r&sig=c2ln"
	plain := "http://127.0.0.1:10000/devstoreaccount1/c1c/x.tar"
	custom := "https://bundles.example.com/c1c/x.tar"
	tests := []struct {
		name    string
		url     string
		env     map[string]string
		want    credKind
		wantErr string
	}{
		{"SAS wins over everything", sasURL, map[string]string{EnvConnectionString: "UseDevelopmentStorage=true", EnvAccountKey: devKey}, credSAS, ""},
		{"connection string before key", plain, map[string]string{EnvConnectionString: "UseDevelopmentStorage=true", EnvAccountKey: devKey}, credConnKey, ""},
		{"connection string SAS", plain, map[string]string{EnvConnectionString: "SharedAccessSignature=sv=1&sig=c2ln"}, credConnSAS, ""},
		{"connection string for another account", plain, map[string]string{EnvConnectionString: "AccountName=other;AccountKey=" + testKey}, credConnKey, `is for account "other" but the URL names account "devstoreaccount1"`},
		{"malformed connection string", plain, map[string]string{EnvConnectionString: "garbage"}, credConnKey, EnvConnectionString + ": connection string: segment 1 has no '='"},
		{"account key", plain, map[string]string{EnvAccountKey: devKey}, credKey, ""},
		{"account key, custom domain, account from env", custom, map[string]string{EnvAccountKey: testKey, EnvAccountName: "acct"}, credKey, ""},
		{"account key, custom domain, no account", custom, map[string]string{EnvAccountKey: testKey}, credKey, "set " + EnvAccountName},
		{"account key, account mismatch", plain, map[string]string{EnvAccountKey: testKey, EnvAccountName: "other"}, credKey, `AZURE_STORAGE_ACCOUNT="other" but the URL names account "devstoreaccount1"`},
		{"account key not base64", plain, map[string]string{EnvAccountKey: "not base64!"}, credKey, EnvAccountKey},
		{"expired SAS", strings.Replace(sasURL, "2099", "2001", 1), nil, credSAS, "expired at 2001-01-01T00:00:00Z"},
		{"identity last", plain, nil, credIdentity, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearCreds(t)
			t.Setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			loc, err := ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			c, kind, err := newContainerClient(loc, Options{})
			if kind != tc.want {
				t.Errorf("credential %v, want %v", kind, tc.want)
			}
			if tc.wantErr != "" {
				assertOneLine(t, err)
				if !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrAuth) || !errors.Is(err, ErrUpstream) {
					t.Errorf("error %q, want one matching ErrAuth and saying %q", err, tc.wantErr)
				}
				for _, v := range tc.env {
					if len(v) > 12 && strings.Contains(err.Error(), v) {
						t.Errorf("error %q shows a secret", err)
					}
				}
				return
			}
			if err != nil || c == nil {
				t.Fatalf("client: %v", err)
			}
			if tc.want == credSAS && !strings.Contains(c.URL(), "sig=c2ln") {
				t.Errorf("client URL %s lacks the SAS", c.URL())
			}
		})
	}
}

// fakeResponse builds the SDK's error for a storage answer with a
// multi-line body, as the service sends.
func fakeResponse(t *testing.T, status int, code, rawURL string) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{
		StatusCode: status,
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header:     http.Header{"X-Ms-Error-Code": {code}},
		Body:       io.NopCloser(strings.NewReader("<?xml version=\"1.0\"?>\n<Error><Code>" + code + "</Code>\n<Message>Server failed.\nRequestId:1</Message></Error>")),
		Request:    req,
	}
	return runtime.NewResponseError(resp)
}

func TestClassify(t *testing.T) {
	secretURL := "https://acct.blob.core.windows.net/c1c/x.tar?sv=1&sig=U0VDUkVU"
	tests := []struct {
		name     string
		cred     credKind
		err      error
		markers  []error
		notMatch []error
		want     string
	}{
		{"403 SAS", credSAS, fakeResponse(t, 403, "AuthenticationFailed", secretURL),
			[]error{ErrUpstream, ErrAuth}, []error{ErrNotFound}, "access denied (HTTP 403 AuthenticationFailed): the SAS token in the URL was rejected"},
		{"403 key", credKey, fakeResponse(t, 403, "AuthenticationFailed", secretURL),
			[]error{ErrUpstream, ErrAuth}, nil, "account key from AZURE_STORAGE_KEY was rejected"},
		{"403 identity lacks role", credIdentity, fakeResponse(t, 403, "AuthorizationPermissionMismatch", secretURL),
			[]error{ErrUpstream, ErrAuth}, nil, "Storage Blob Data Contributor"},
		{"404 blob", credKey, fakeResponse(t, 404, "BlobNotFound", secretURL),
			[]error{ErrUpstream, ErrNotFound}, []error{ErrAuth}, "blob not found (HTTP 404 BlobNotFound)"},
		{"404 container", credKey, fakeResponse(t, 404, "ContainerNotFound", secretURL),
			[]error{ErrUpstream, ErrNotFound}, nil, "container not found"},
		{"412 changed", credKey, fakeResponse(t, 412, "ConditionNotMet", secretURL),
			[]error{ErrUpstream}, []error{ErrNotFound, ErrAuth}, "the blob changed while it was being read"},
		{"503", credKey, fakeResponse(t, 503, "ServerBusy", secretURL),
			[]error{ErrUpstream}, []error{ErrAuth}, "storage service error (HTTP 503 ServerBusy)"},
		{"network", credKey, &url.Error{Op: "Get", URL: secretURL, Err: syscall.ECONNREFUSED},
			[]error{ErrUpstream, syscall.ECONNREFUSED}, []error{ErrAuth}, "cannot reach acct.blob.core.windows.net: connection refused"},
		{"identity without token", credIdentity, errors.New("DefaultAzureCredential: failed to acquire a token.\nAttempted credentials:\n\tEnvironmentCredential: missing"),
			[]error{ErrUpstream, ErrAuth}, nil, "no usable Azure credential (DefaultAzureCredential: failed to acquire a token.)"},
		{"canceled", credKey, fmt.Errorf("x: %w", context.Canceled),
			[]error{context.Canceled}, []error{ErrUpstream}, "op: x: context canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("op", tc.cred, tc.err)
			assertOneLine(t, err)
			for _, m := range tc.markers {
				if !errors.Is(err, m) {
					t.Errorf("%q does not match %v", err, m)
				}
			}
			for _, m := range tc.notMatch {
				if errors.Is(err, m) {
					t.Errorf("%q matches %v", err, m)
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "U0VDUkVU") {
				t.Errorf("%q shows the signature", err)
			}
			var re *azcore.ResponseError
			if _, isResp := tc.err.(*azcore.ResponseError); isResp && !errors.As(err, &re) {
				t.Errorf("the SDK's ResponseError is not reachable with errors.As")
			}
		})
	}
}
