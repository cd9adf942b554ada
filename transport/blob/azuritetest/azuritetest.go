// Package azuritetest gives tests a real Azurite blob service: the one
// `make test` started (its URL in CCMIRROR_AZURITE_URL), or else one this
// test binary starts with .ci/azurite.sh and stops in Stop.
package azuritetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Env names the variable holding a running Azurite's account URL.
const Env = "CCMIRROR_AZURITE_URL"

// Key is Azurite's well-known development account key (devstoreaccount1).
const Key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

var az struct {
	once sync.Once
	url  string // http://127.0.0.1:PORT/devstoreaccount1
	dir  string // set when this process started Azurite
	skip string
	fail string
}

// URL returns the Azurite account URL, starting Azurite on first use. The
// test is skipped when Azurite cannot be installed on this machine (no npm
// registry), and fails when it is installed but does not start.
func URL(t testing.TB) string {
	t.Helper()
	az.once.Do(start)
	if az.skip != "" {
		t.Skip(az.skip)
	}
	if az.fail != "" {
		t.Fatal(az.fail)
	}
	return az.url
}

// Stop stops an Azurite this process started; call it from TestMain.
func Stop() {
	if az.dir == "" {
		return
	}
	script, err := script()
	if err == nil {
		cmd := exec.Command("bash", script, "stop", az.dir)
		cmd.Stderr = os.Stderr
		err = cmd.Run()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stopping Azurite: %v\n", err)
	}
	os.RemoveAll(az.dir)
}

// script finds .ci/azurite.sh at the module root above the working folder.
func script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".ci", "azurite.sh"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working folder")
		}
		dir = parent
	}
}

func start() {
	if u := strings.TrimSpace(os.Getenv(Env)); u != "" {
		az.url = strings.TrimRight(u, "/")
		return
	}
	sh, err := script()
	if err != nil {
		az.fail = err.Error()
		return
	}
	dir, err := os.MkdirTemp("", "ccmirror-azurite-")
	if err != nil {
		az.fail = err.Error()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", sh, "start", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		os.RemoveAll(dir)
		msg := fmt.Sprintf(".ci/azurite.sh start: %v: %s", err, strings.TrimSpace(stderr.String()))
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			az.skip = "Azurite cannot be installed here, skipping blob storage tests (" + msg + ")"
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
