package syncjob

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/transport/blob"
	"github.com/ccmirror/ccmirror/transport/blob/azuritetest"
)

// The publish test runs against a real Azurite (see azuritetest).

func TestMain(m *testing.M) {
	code := m.Run()
	azuritetest.Stop()
	os.Exit(code)
}

// azurite returns the Azurite account URL and makes the test authenticate
// with its account key.
func azurite(t *testing.T) string {
	t.Helper()
	url := azuritetest.URL(t)
	for _, k := range []string{blob.EnvConnectionString, blob.EnvAccountName, "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	t.Setenv(blob.EnvAccountKey, azuritetest.Key)
	return url
}

func TestPublish(t *testing.T) {
	base := azurite(t)
	b := make([]byte, 5)
	rand.Read(b)
	container := base + "/sync-" + hex.EncodeToString(b)
	publish := container + "/mirror/"
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	w := newWorld(t)
	project := "  - ref: gridengine\n    versions: [latest]\n"
	// A first run without publishing, as if the upload had failed: the
	// next run with a publish URL uploads what the container lacks.
	w.mustRun(w.config(project))
	c := w.config(project, "publish: "+publish)
	s := w.mustRun(c)
	want := []string{container + "/mirror/gridengine-2.1.0.tar", container + "/mirror/index.json", container + "/mirror/index.json.sig"}
	if !s.NothingNew || !slices.Equal(s.Published, want) {
		t.Fatalf("publish run: nothing_new=%v published %v, want %v", s.NothingNew, s.Published, want)
	}
	checkRemote(ctx, t, w, container, []string{"mirror/gridengine-2.1.0.tar", "mirror/index.json", "mirror/index.json.sig"})

	// A new release: its bundle goes up before the index that names it.
	if err := w.gh.AddRelease("cyclecloud-gridengine", "2.2.0", "2.1.0"); err != nil {
		t.Fatal(err)
	}
	s = w.mustRun(c)
	want = []string{container + "/mirror/gridengine-2.2.0.tar", container + "/mirror/index.json", container + "/mirror/index.json.sig"}
	if got := files(s.New); !slices.Equal(got, []string{"gridengine-2.2.0.tar"}) || !slices.Equal(s.Published, want) {
		t.Fatalf("new release: wrote %v, published %v; want gridengine-2.2.0.tar and %v", got, s.Published, want)
	}
	checkRemote(ctx, t, w, container, []string{"mirror/gridengine-2.1.0.tar", "mirror/gridengine-2.2.0.tar", "mirror/index.json", "mirror/index.json.sig"})

	// Nothing new: nothing uploaded.
	s = w.mustRun(c)
	if !s.NothingNew || len(s.Published) != 0 {
		t.Errorf("idle run: nothing_new=%v published %v", s.NothingNew, s.Published)
	}
}

// checkRemote checks the container holds exactly names, with the same bytes
// as the output folder, and that the published index verifies.
func checkRemote(ctx context.Context, t *testing.T, w *world, container string, names []string) {
	t.Helper()
	list, err := blob.List(ctx, container, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range list {
		got = append(got, b.Name)
	}
	if !slices.Equal(got, names) {
		t.Fatalf("container holds %v, want %v", got, names)
	}
	remote := map[string][]byte{}
	for _, n := range names {
		rc, _, err := blob.Open(ctx, container+"/"+n)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		local, err := os.ReadFile(filepath.Join(w.out(), strings.TrimPrefix(n, "mirror/")))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, local) {
			t.Errorf("%s differs between the container and the output folder", n)
		}
		remote[n] = data
	}
	if _, err := w.allowed.Verify(remote["mirror/index.json"], remote["mirror/index.json.sig"], "ccmirror", time.Now()); err != nil {
		t.Errorf("the published index does not verify: %v", err)
	}
}
