//go:build unix

package register

import (
	"os/exec"
	"syscall"
)

// killGroup makes c run in a process group of its own, killed whole when c's context ends,
// so that a timed-out check leaves no children behind.
func killGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
}
