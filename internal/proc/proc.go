// Package proc reads what a process uses from Linux's /proc, for the benchmarks.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSS returns a process's resident set in KiB, or 0 when it cannot be read.
func RSS(pid int) int64 { return status(pid, "VmRSS:") }

// PeakRSS returns the largest resident set of a process in KiB since it started or since
// ResetPeak, or 0 when it cannot be read.
func PeakRSS(pid int) int64 { return status(pid, "VmHWM:") }

// ResetPeak starts PeakRSS anew from the process's resident set now.
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

func status(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return 0
}

// CPUSeconds returns a process's user and system CPU time, or 0 when it cannot be read.
func CPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}
