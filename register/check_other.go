//go:build !unix

package register

import "os/exec"

// killGroup kills only the command itself: there are no process groups to kill.
func killGroup(c *exec.Cmd) {
	c.Cancel = func() error { return c.Process.Kill() }
}
