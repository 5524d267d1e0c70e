//go:build unix

package register

import (
	"os/exec"
	"syscall"
)

// killGroup makes c run in a process group of its own, which c.Cancel kills whole: when
// c's context ends, and when ExecCheck is done with it.
func killGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
}
