package main

import (
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// port is one port `make run` serves on 127.0.0.1, what it is for, and the make variable
// that moves it.
type port struct {
	number int
	udp    bool // DNS: UDP as well as TCP
	use    string
	flag   string // RUN_ETCD_PORT, ...
}

// checkPorts refuses to start anything while a port of the stack is taken, or two of its
// ports are one: etcd would exit and the status check be answered by whatever holds its
// port, and a second CoreDNS would share the DNS port with the first through SO_REUSEPORT.
func checkPorts(ports []port) error {
	seen := map[int]port{}
	for _, p := range ports {
		if p.number < 1 || p.number > 65535 {
			return fmt.Errorf("port %d (%s) is not a port from 1 to 65535: give another with make run %s=PORT", p.number, p.use, p.flag)
		}
		if q, ok := seen[p.number]; ok {
			return fmt.Errorf("port %d is both %s and %s: give another with make run %s=PORT", p.number, q.use, p.use, p.flag)
		}
		seen[p.number] = p
	}
	for _, p := range ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.number))
		err := bindable("tcp", addr)
		if err == nil && p.udp {
			err = bindable("udp", addr)
		}
		if err != nil {
			return fmt.Errorf("port %d (%s) is in use %s; stop it, or give make run another: make run %s=PORT", p.number, p.use, holder(p.number), p.flag)
		}
	}
	return nil
}

// bindable binds addr without SO_REUSEPORT, which fails while any socket holds it.
func bindable(network, addr string) error {
	if network == "udp" {
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// ssUser is the first process of ss's users:(("NAME",pid=PID,fd=FD)).
var ssUser = regexp.MustCompile(`\("([^"]+)",pid=([0-9]+)`)

// holder names the processes bound to port as ss (iproute2) or lsof tell them; another
// user's process only root can see.
func holder(port int) string {
	if out, err := exec.Command("ss", "-Hlnptu", "sport = :"+strconv.Itoa(port)).Output(); err == nil {
		if m := ssUser.FindStringSubmatch(string(out)); m != nil {
			return fmt.Sprintf("by %s (pid %s)", m[1], m[2])
		}
	}
	if out, err := exec.Command("lsof", "-nP", "-i", ":"+strconv.Itoa(port)).Output(); err == nil {
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) > 1 {
			if f := strings.Fields(lines[1]); len(f) > 1 {
				return fmt.Sprintf("by %s (pid %s)", f[0], f[1])
			}
		}
	}
	return fmt.Sprintf("by a process of another user (sudo ss -ltnup 'sport = :%d' names it; a packaged etcd is often one: systemctl stop etcd)", port)
}
