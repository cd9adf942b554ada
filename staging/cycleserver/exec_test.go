package cycleserver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeCycleServer writes a cycle_server stand-in that checks its arguments
// and answers `execute -format json QUERY` with jsonBody/jsonExit and
// `execute QUERY` with plainBody/plainExit (stderr gets the *Err text).
func fakeCycleServer(t *testing.T, jsonBody string, jsonExit int, jsonErr, plainBody string, plainExit int, plainErr string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"json.out": jsonBody, "json.err": jsonErr, "plain.out": plainBody, "plain.err": plainErr} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
d=$(dirname "$0")
if [ "$1" != execute ]; then echo "unknown command $1" >&2; exit 64; fi
if [ "$#" = 4 ] && [ "$2" = -format ] && [ "$3" = json ] && [ "$4" = "` + Query + `" ]; then
  cat "$d/json.out"; cat "$d/json.err" >&2; exit ` + strconv.Itoa(jsonExit) + `
fi
if [ "$#" = 2 ] && [ "$2" = "` + Query + `" ]; then
  cat "$d/plain.out"; cat "$d/plain.err" >&2; exit ` + strconv.Itoa(plainExit) + `
fi
echo "unexpected arguments: $*" >&2; exit 65
`
	path := filepath.Join(dir, "cycle_server")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRecords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		jsonBody, jsonErr   string
		jsonExit            int
		plainBody, plainErr string
		plainExit           int
		want                []Project
		wantErr             []string // substrings, all required
	}{
		{name: "json output", jsonBody: realJSON, plainExit: 9, plainErr: "must not be asked", want: realWant},
		{
			name: "older server rejects -format json", jsonExit: 1, jsonErr: "Unknown option: -format\nusage: ...",
			plainBody: realOutput, want: realWant,
		},
		{
			name: "-format json ignored, default format printed", jsonBody: realOutput,
			plainBody: realOutput, want: realWant,
		},
		{name: "no projects", jsonBody: "[]\n", want: []Project{}},
		{
			name: "server down", jsonExit: 1, jsonErr: "Error: Unable to connect to CycleServer at localhost:9443\n\tat x.y\n",
			plainExit: 2, plainErr: "\nError: Unable to connect to CycleServer at localhost:9443\n\tat x.y\n",
			wantErr: []string{"cycle_server execute 'select * from cloud.project': exit status 2: Error: Unable to connect to CycleServer at localhost:9443",
				"(with -format json: exit status 1: Error: Unable to connect"},
		},
		{
			name: "unparsable output", jsonBody: "Warning: garbage\n", plainBody: "Warning: garbage\n",
			wantErr: []string{"cycle_server execute 'select * from cloud.project': output not understood: line 1: not a `Key = value` line: \"Warning: garbage\"",
				"(with -format json: not JSON"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := fakeCycleServer(t, tc.jsonBody, tc.jsonExit, tc.jsonErr, tc.plainBody, tc.plainExit, tc.plainErr)
			got, err := Records(context.Background(), path, 0)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Records succeeded with %+v, want error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\nwant it to contain %q", err, w)
					}
				}
				if !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q must name the command on one line", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestRecordsMissingCommand(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cycle_server")
	_, err := Records(context.Background(), path, 0)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path+" execute -format json") {
		t.Fatalf("error %v, want one naming %s and wrapping fs.ErrNotExist", err, path)
	}
}

func TestRecordsCancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "cycle_server")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Records(ctx, path, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want deadline exceeded", err)
	}
}

// TestRecordsBounded: a cycle_server that prints more than the 64 MiB cap,
// or hangs before or after printing, or leaves a grandchild holding its
// output, ends Records with a clear error and no process left behind.
func TestRecordsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		wantErr string
	}{
		{name: "prints 100 MiB", script: `head -c 104857600 /dev/zero`, timeout: time.Hour, wantErr: "printed more than the output cap of 64 MiB"},
		{name: "hangs before printing", script: `exec sleep 1000`, wantErr: "timed out after 300ms"},
		{name: "hangs after printing", script: `echo '[]'; exec sleep 1000`, wantErr: "timed out after 300ms"},
		{name: "grandchild keeps the output open", script: `sleep 1000 & echo $! > "$(dirname "$0")/grandchild"; echo '[]'`, timeout: time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "cycle_server")
			if err := os.WriteFile(path, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.timeout == 0 {
				tc.timeout = 300 * time.Millisecond
			}
			recs, err := Records(context.Background(), path, tc.timeout)
			if tc.wantErr == "" {
				if err != nil || len(recs) != 0 {
					t.Fatalf("Records = %v, %v; want no records and no error", recs, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path+" execute") {
				t.Fatalf("error %v, want one naming %s and %q", err, path, tc.wantErr)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "grandchild")); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				for i := 0; i < 200 && running(pid); i++ {
					time.Sleep(10 * time.Millisecond)
				}
				if running(pid) {
					t.Errorf("grandchild %d still runs after Records returned", pid)
				}
			}
		})
	}
}

// running reports whether pid is a live (not zombie) process.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}
