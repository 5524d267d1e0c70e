//go:build !unix

package register

import "os/exec"

// killGroup leaves c as it is: without process groups, only the command itself is killed.
func killGroup(*exec.Cmd) {}
