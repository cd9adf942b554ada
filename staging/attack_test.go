package staging

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// These tests play the attacker of issue 13: the cycle_server account, as
// a real process with cycle_server's uid and gid (this test binary re-run
// through SysProcAttr.Credential), owning the staging tree, planting
// symlinks and FIFOs before an install and swapping folders for symlinks
// while it runs, driven by inotify. Root-owned canaries outside the root
// must never change, nothing may hang, and each install either stages
// correctly or refuses with a clear error.

// attackerEnv carries an attackerConfig: when set, the test binary is the
// attacker.
const attackerEnv = "CCMIRROR_STAGING_TEST_ATTACKER"

type attackerConfig struct {
	Mode     string `json:"mode"`     // "race" or "plant"
	Projects string `json:"projects"` // R/work/staging/projects
	Dir      string `json:"dir"`      // root-owned canary folder symlinks point to
	File     string `json:"file"`     // root-owned canary file symlinks point to
	Plant    string `json:"plant"`    // "plant": what, see plantings
	Seed     int64  `json:"seed"`
}

// attackerMain is the attacker process: it must not be root.
func attackerMain() int {
	var c attackerConfig
	if err := json.Unmarshal([]byte(os.Getenv(attackerEnv)), &c); err != nil {
		fmt.Fprintln(os.Stderr, "attacker:", err)
		return 2
	}
	if os.Geteuid() == 0 {
		fmt.Fprintln(os.Stderr, "attacker: runs as root; refusing to play cycle_server")
		return 2
	}
	switch c.Mode {
	case "plant":
		if err := plant(c); err != nil {
			fmt.Fprintln(os.Stderr, "attacker:", err)
			return 1
		}
		return 0
	case "race":
		return race(c)
	}
	return 2
}

// plantings are what the attacker leaves in the staging tree before an
// install of demo 1.0.0, at every path the install touches.
var plantings = map[string]func(c attackerConfig) error{
	"project folder is a symlink": func(c attackerConfig) error {
		return os.Symlink(c.Dir, filepath.Join(c.Projects, "demo"))
	},
	"blobs folder is a symlink": func(c attackerConfig) error {
		return mkdirSymlink(c, "demo", "demo/blobs", c.Dir)
	},
	"version folder is a symlink": func(c attackerConfig) error {
		return mkdirSymlink(c, "demo", "demo/1.0.0", c.Dir)
	},
	"blob is a symlink to a root file": func(c attackerConfig) error {
		return mkdirSymlink(c, "demo/blobs", "demo/blobs/shared-1.0.whl", c.File)
	},
	"blob is a FIFO": func(c attackerConfig) error {
		if err := os.MkdirAll(filepath.Join(c.Projects, "demo/blobs"), 0o755); err != nil {
			return err
		}
		return unix.Mkfifo(filepath.Join(c.Projects, "demo/blobs/shared-1.0.whl"), 0o644)
	},
	"staged project.ini is a FIFO": func(c attackerConfig) error {
		if err := os.MkdirAll(filepath.Join(c.Projects, "demo/1.0.0"), 0o755); err != nil {
			return err
		}
		return unix.Mkfifo(filepath.Join(c.Projects, "demo/1.0.0/project.ini"), 0o644)
	},
	"projects folder is a symlink": func(c attackerConfig) error {
		if err := os.Rename(c.Projects, c.Projects+".real"); err != nil {
			return err
		}
		return os.Symlink(c.Dir, c.Projects)
	},
	"staging folder is a symlink": func(c attackerConfig) error {
		staging := filepath.Dir(c.Projects)
		if err := os.Rename(staging, staging+".real"); err != nil {
			return err
		}
		return os.Symlink(c.Dir, staging)
	},
}

func mkdirSymlink(c attackerConfig, dir, link, target string) error {
	if err := os.MkdirAll(filepath.Join(c.Projects, dir), 0o755); err != nil {
		return err
	}
	return os.Symlink(target, filepath.Join(c.Projects, link))
}

func plant(c attackerConfig) error {
	f := plantings[c.Plant]
	if f == nil {
		return fmt.Errorf("unknown planting %q", c.Plant)
	}
	return f(c)
}

// race watches the projects folder and every folder that appears below it
// with inotify, and swaps what appears (folders and files renamed in) for
// a symlink to a root-owned canary, at once or after a random few hundred
// microseconds. It prints "ready" when watching and, on stdin EOF, the
// number of swaps.
func race(c attackerConfig) int {
	rnd := rand.New(rand.NewSource(c.Seed))
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attacker: inotify:", err)
		return 1
	}
	watches := map[int]string{}
	watch := func(dir string) {
		wd, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ONLYDIR)
		if err == nil {
			watches[wd] = dir
		}
	}
	watch(c.Projects)
	var swaps int
	var mu sync.Mutex
	go func() {
		io.Copy(io.Discard, os.Stdin)
		mu.Lock()
		fmt.Println(swaps)
		os.Exit(0)
	}()
	fmt.Println("ready")
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return 1
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafePointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			name := strings.TrimRight(string(nameBytes), "\x00")
			dir := watches[int(ev.Wd)]
			if dir == "" || name == "" || strings.HasSuffix(name, ".moved") {
				continue
			}
			p := filepath.Join(dir, name)
			isDir := ev.Mask&unix.IN_ISDIR != 0
			if isDir {
				watch(p)
			}
			switch rnd.Intn(3) {
			case 0:
				continue // let this one be
			case 1:
				time.Sleep(time.Duration(rnd.Intn(500)) * time.Microsecond)
			}
			target := c.File
			if isDir {
				target = c.Dir
			}
			mu.Lock()
			if os.Rename(p, p+".moved") == nil && os.Symlink(target, p) == nil {
				swaps++
			}
			mu.Unlock()
		}
	}
}

// attackerBinary is a copy of this test binary that cycle_server may run
// (the go tool builds in a folder only root can enter).
var (
	attackerOnce sync.Once
	attackerBin  string
	attackerErr  error
)

func attackerPath(t *testing.T) string {
	t.Helper()
	attackerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ccm-attacker-")
		if err != nil {
			attackerErr = err
			return
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			attackerErr = err
			return
		}
		self, err := os.Executable()
		if err != nil {
			attackerErr = err
			return
		}
		b, err := os.ReadFile(self)
		if err != nil {
			attackerErr = err
			return
		}
		attackerBin = filepath.Join(dir, "attacker.test")
		attackerErr = os.WriteFile(attackerBin, b, 0o755)
	})
	if attackerErr != nil {
		t.Fatalf("attacker binary: %v", attackerErr)
	}
	return attackerBin
}

// attackWorld is a staging root as on a CycleCloud server: R root's,
// R/work/staging/projects cycle_server's; canaries root's, outside R.
type attackWorld struct {
	*env
	uid, gid int
	canary   string // folder
	file     string // file in it
	before   map[string]string
}

func newAttackWorld(t *testing.T) *attackWorld {
	t.Helper()
	uid := cycleServerUID(t)
	u, _ := user.Lookup("cycle_server")
	gid, _ := strconv.Atoi(u.Gid)
	e := newEnv(t)
	e.opts.Owner = "cycle_server:cycle_server"
	o, err := ResolveOwner(e.opts.Owner)
	if err != nil {
		t.Fatal(err)
	}
	e.owner = o
	// The test folders must be reachable by cycle_server.
	for d := e.root; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{"work", "work/staging", "work/staging/projects"} {
		p := filepath.Join(e.root, rel)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	canary := t.TempDir()
	for d := canary; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(canary, "shadow")
	if err := os.WriteFile(file, []byte("root's secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &attackWorld{env: e, uid: uid, gid: gid, canary: canary, file: file}
	w.before = snapshot(t, canary)
	return w
}

func (w *attackWorld) config(mode string) attackerConfig {
	return attackerConfig{Mode: mode, Projects: ProjectsDir(w.root), Dir: w.canary, File: w.file}
}

// attacker starts the attacker process as cycle_server.
func (w *attackWorld) attacker(t *testing.T, c attackerConfig) *exec.Cmd {
	t.Helper()
	b, _ := json.Marshal(c)
	cmd := exec.Command(attackerPath(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), attackerEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(w.uid), Gid: uint32(w.gid)}}
	return cmd
}

// checkCanaries fails when anything outside the root changed.
func (w *attackWorld) checkCanaries(t *testing.T) {
	t.Helper()
	if d := diffSnap(w.before, snapshot(t, w.canary)); d != "" {
		t.Errorf("root-owned files outside the root changed:\n%s", d)
	}
}

// checkError: a refusal is one line naming a path.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "/") {
		t.Errorf("refusal %q: want one line naming the path", msg)
	}
}

// TestAttackerPlants: as cycle_server, plant a symlink or FIFO at each path
// an install of demo 1.0.0 touches, then install (and read status) as
// root. Nothing outside the root changes, nothing hangs, and the install
// either stages the bundle correctly or refuses.
func TestAttackerPlants(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	bundle := makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer)
	for name := range plantings {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newAttackWorld(t)
			c := w.config("plant")
			c.Plant = name
			if out, err := w.attacker(t, c).CombinedOutput(); err != nil {
				t.Fatalf("attacker: %v: %s", err, out)
			}
			_, err := w.install(bundle, func(o *InstallOptions) { o.Force = true })
			if err != nil {
				checkRefusal(t, err)
				t.Logf("refused: %v", err)
			} else {
				w.checkInstalled(t)
				t.Logf("installed")
			}
			if _, err := w.status(); err != nil {
				checkRefusal(t, err)
			}
			w.checkCanaries(t)
		})
	}
}

// checkInstalled: the staged demo 1.0.0 is complete and what the bundle
// holds, owned by cycle_server with policy modes.
func (w *attackWorld) checkInstalled(t *testing.T) {
	t.Helper()
	st, err := w.status()
	if err != nil {
		t.Fatalf("status after a successful install: %v", err)
	}
	for _, v := range st.Versions {
		if v.Name == "demo" && v.Version == "1.0.0" {
			if !v.OK || v.ChangedCount != 0 || v.OwnerProblemCount != 0 || v.InstalledBy == nil {
				t.Errorf("install succeeded but status says demo 1.0.0 is not as installed: %+v", v)
			}
			return
		}
	}
	t.Errorf("install succeeded but status does not list demo 1.0.0")
}

// TestAttackerRaces: cycle_server swaps folders and files for symlinks as
// they appear during installs (inotify), many times over, with random
// delays to hit windows of microseconds to milliseconds.
func TestAttackerRaces(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	bundles := [][]byte{
		makeBundle(t, []testProject{demoProject(t, "1.0.0", "one")}, k.signer),
		makeBundle(t, []testProject{demoProject(t, "1.0.0", "two")}, k.signer),
		makeBundle(t, []testProject{demoProject(t, "1.1.0", "one")}, k.signer),
	}
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	var installed, refused, swapped int
	for i := 0; i < rounds; i++ {
		w := newAttackWorld(t)
		c := w.config("race")
		c.Seed = int64(i)
		cmd := w.attacker(t, c)
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out := bufio.NewScanner(stdout)
		if !out.Scan() || out.Text() != "ready" {
			t.Fatalf("attacker did not start: %q", out.Text())
		}
		// Each round installs the three bundles in turn: new folders,
		// replaced files (with --force), an exchanged version folder.
		for _, b := range bundles {
			_, err := w.install(b, func(o *InstallOptions) { o.Force = true })
			if err != nil {
				refused++
				checkRefusal(t, err)
			} else {
				installed++
			}
		}
		stdin.Close()
		n := 0
		if out.Scan() {
			n, _ = strconv.Atoi(out.Text())
		}
		_ = cmd.Wait()
		swapped += n
		if n == 0 {
			// Nobody interfered: the last install must be complete.
			if _, err := w.install(bundles[2]); err != nil {
				t.Errorf("round %d: install without interference: %v", i, err)
			}
		}
		w.checkCanaries(t)
		if t.Failed() {
			t.Fatalf("round %d (seed %d) failed; logs:\n%s", i, c.Seed, w.logs.String())
		}
	}
	t.Logf("%d rounds: %d installs succeeded, %d refused, %d swaps by the attacker", rounds, installed, refused, swapped)
	if swapped == 0 {
		t.Errorf("the attacker never swapped anything: the race was not run")
	}
}

func unsafePointer(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }
