package syncjob

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/mirror/blobstore"
)

// The publish test runs against a real Azurite: `make test` passes its URL
// in CCMIRROR_AZURITE_URL; without it the test starts one with
// .ci/azurite.sh and stops it at the end, and skips when Azurite cannot be
// installed on this machine.

const azuriteEnv = "CCMIRROR_AZURITE_URL"

// azuriteKey is Azurite's well-known development account key.
const azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

var az struct {
	once sync.Once
	url  string
	dir  string // set when this test binary started Azurite
	skip string
	fail string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if az.dir != "" {
		cmd := exec.Command("bash", "../../.ci/azurite.sh", "stop", az.dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping Azurite: %v\n", err)
		}
		os.RemoveAll(az.dir)
	}
	os.Exit(code)
}

func startAzurite() {
	if u := strings.TrimSpace(os.Getenv(azuriteEnv)); u != "" {
		az.url = strings.TrimRight(u, "/")
		return
	}
	dir, err := os.MkdirTemp("", "ccmirror-sync-azurite-")
	if err != nil {
		az.fail = err.Error()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", "../../.ci/azurite.sh", "start", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		os.RemoveAll(dir)
		msg := fmt.Sprintf(".ci/azurite.sh start: %v: %s", err, strings.TrimSpace(stderr.String()))
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			az.skip = "Azurite cannot be installed here, skipping the publish test (" + msg + ")"
		} else {
			az.fail = msg
		}
		return
	}
	az.dir = dir
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "AZURITE_BLOB_URL="); ok {
			az.url = strings.TrimRight(v, "/")
		}
	}
	if az.url == "" {
		az.fail = ".ci/azurite.sh start printed no AZURITE_BLOB_URL: " + string(out)
	}
}

// azurite returns the Azurite account URL and makes the test authenticate
// with its account key.
func azurite(t *testing.T) string {
	t.Helper()
	az.once.Do(startAzurite)
	if az.skip != "" {
		t.Skip(az.skip)
	}
	if az.fail != "" {
		t.Fatal(az.fail)
	}
	for _, k := range []string{blobstore.EnvConnectionString, blobstore.EnvAccountName, "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	t.Setenv(blobstore.EnvAccountKey, azuriteKey)
	return az.url
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
	list, err := blobstore.List(ctx, container, "")
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
		rc, _, err := blobstore.Open(ctx, container+"/"+n)
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
