package blob

import (
	"encoding/base64"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/ccmirror/ccmirror/manifest"
)

// containerSAS signs a container SAS with read, write, create and list
// permissions for Azurite's account.
func containerSAS(t *testing.T, cont string, expiry time.Time) string {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(devAccount, devKey)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-5 * time.Minute).UTC(),
		ExpiryTime:    expiry.UTC(),
		Permissions:   (&sas.ContainerPermissions{Read: true, Write: true, Create: true, List: true}).String(),
		ContainerName: cont,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	return qp.Encode()
}

// replaceSig returns the SAS query with its signature replaced by sig.
func replaceSig(t *testing.T, query string, sig []byte) string {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("sig", base64.StdEncoding.EncodeToString(sig))
	return q.Encode()
}

// sigOf returns the signature of a SAS query as it appears in the query
// string (escaped) — what must never show in a message.
func sigOf(t *testing.T, query string) string {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	return url.QueryEscape(q.Get("sig"))
}

// comp returns the comp= parameter of a request query.
func comp(query string) string {
	q, _ := url.ParseQuery(query)
	return q.Get("comp")
}

func isVerify(err error) bool { return errors.Is(err, manifest.ErrVerify) }
