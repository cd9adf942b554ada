package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// machine describes where the benchmark ran: CPU, cores, memory, kernel
// and the filesystem of the scratch folder.
func machine(work string) string {
	cpu, n := cpuInfo()
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%d", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	fsType := ""
	os.MkdirAll(work, 0o755)
	// df names ext4 as such; stat -f reports every ext* as "ext2/ext3".
	if out, err := exec.Command("df", "--output=fstype", work).Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) > 1 {
			fsType = ", " + f[len(f)-1] + " scratch"
		}
	}
	return fmt.Sprintf("%s, %d cores%s%s%s, %s", cpu, n, mem, kernel, fsType, runtime.Version())
}

func cpuInfo() (string, int) {
	cpu := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "model name") {
				cpu = strings.TrimSpace(strings.SplitN(sc.Text(), ":", 2)[1])
				break
			}
		}
		f.Close()
	}
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "processor\t:")
	}
	if cpu == "" {
		cpu = runtime.GOARCH
	}
	return cpu, n
}

// dropCaches asks the kernel to drop clean page cache when running as root,
// so read-heavy rows start equally cold; elsewhere both sides run warm. It
// says whether the cache was dropped.
func dropCaches() bool {
	exec.Command("sync").Run()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200) == nil
}
