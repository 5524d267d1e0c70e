package devetcd

import (
	"os/exec"
	"syscall"
)

// DieWithParent has the kernel kill cmd's process when the process that started it ends,
// however it ends (SIGKILL, a panic, a test binary's timeout): a development etcd or
// CoreDNS is never left behind holding its ports and data.
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
