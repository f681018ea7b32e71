package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopAPIServer stops kube-apiserver as the kubelet stops a static Pod: SIGTERM, then SIGKILL if it has not exited
// after grace (with clients holding watches, kube-apiserver waits for its request timeout, 60 s, before it exits
// by itself). etcd and its data, the certificates and the users' credentials stay, so StartAPIServer brings the
// same API server back. It reports whether SIGKILL was needed. The first call reads the command line from /proc.
func (c *Cluster) StopAPIServer(grace time.Duration) (killed bool, err error) {
	pid := 0
	if c.faults.api != nil { // restarted by the harness before
		if c.faults.api.Exited() {
			return false, nil
		}
		pid = c.faults.api.PID()
	} else {
		if pid, err = c.apiServerPID(); err != nil {
			return false, err
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return false, err
		}
		c.faults.apiArgv = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("stop kube-apiserver (pid %d): %w", pid, err)
	}
	// Its parent (envtest, or the harness's Process) waits on it, so the pid disappears once it has exited.
	deadline := time.Now().Add(grace)
	for syscall.Kill(pid, 0) == nil {
		if !killed && time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return killed, nil
}

// StartAPIServer starts kube-apiserver again with the command line it had, and waits until it reports ready. The
// harness stops it by PID in Stop.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if len(c.faults.apiArgv) == 0 {
		return fmt.Errorf("kube-apiserver was not stopped by the harness")
	}
	var err error
	c.faults.api, err = StartProcess(ctx, "kube-apiserver", c.faults.apiArgv[0], filepath.Join(c.o.Dir, "kube-apiserver.log"), c.faults.apiArgv[1:]...)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		if c.faults.api.Exited() {
			return fmt.Errorf("kube-apiserver exited: %s", c.faults.api.Output())
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("/readyz answered %q", body)
			}
			return fmt.Errorf("kube-apiserver not ready 60s after its restart: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// apiServerPID finds the kube-apiserver envtest started: a child of this process running the assets' binary.
func (c *Cluster) apiServerPID() (int, error) {
	want, err := filepath.EvalSymlinks(filepath.Join(c.o.Assets, "kube-apiserver"))
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so fields are counted after its closing parenthesis.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := strings.Fields(string(rest))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == want {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no kube-apiserver (%s) among this process's children", want)
}
