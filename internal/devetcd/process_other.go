//go:build !linux

package devetcd

import "os/exec"

// DieWithParent does nothing where the kernel has no parent-death signal: a process left
// behind there is stopped by hand.
func DieWithParent(*exec.Cmd) {}
