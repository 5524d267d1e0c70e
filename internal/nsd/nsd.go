// Package nsd runs NSD, Debian's authoritative server, on loopback for the tests: as a
// secondary that transfers a zone from etcdsd (test/xfr), or serving a zone file, a
// reference for answers the RFCs fix where CoreDNS's file plugin departs from them
// (test/compat).
package nsd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Zone is one zone NSD serves: from File (the zone file's text), or transferred from
// Primary (host:port), which may NOTIFY it.
type Zone struct {
	Name    string // without the final dot
	File    string
	Primary string
}

// Start starts NSD on 127.0.0.1:port serving zones until t ends, and returns its address.
// It skips t when NSD is not installed (make test installs Debian's package).
func Start(t testing.TB, port int, zones ...Zone) string {
	t.Helper()
	bin, err := exec.LookPath("nsd")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/nsd"); err != nil {
			t.Skip("nsd is not installed (apt-get install nsd; make test installs it)")
		}
		bin = "/usr/sbin/nsd"
	}
	dir := t.TempDir()
	conf := fmt.Sprintf(`server:
	ip-address: 127.0.0.1@%[1]d
	username: ""
	chroot: ""
	zonesdir: "%[2]s"
	pidfile: "%[2]s/nsd.pid"
	xfrdfile: "%[2]s/xfrd.state"
	zonelistfile: "%[2]s/zone.list"
	database: ""
	logfile: "%[2]s/nsd.log"
	verbosity: 2
	xfrd-reload-timeout: 0
remote-control:
	control-enable: no
`, port, dir)
	for i, z := range zones {
		file := fmt.Sprintf("zone%d", i)
		conf += fmt.Sprintf("zone:\n\tname: %q\n\tzonefile: %s\n", z.Name, file)
		if z.Primary != "" {
			conf += fmt.Sprintf("\trequest-xfr: %s NOKEY\n\tallow-notify: 127.0.0.1 NOKEY\n", strings.Replace(z.Primary, ":", "@", 1))
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(z.File), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "nsd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", filepath.Join(dir, "nsd.conf"))
	// nsd forks its server and transfer processes: they go with its process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGTERM lets nsd reap its children; what is left goes with the group.
		syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
			t.Logf("nsd.log:\n%s", log)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// Serving once it answers; a zone it transfers may come later.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		q := new(dns.Msg).SetQuestion(dns.Fqdn(zones[0].Name), dns.TypeSOA)
		if _, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(q, addr); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nsd on %s does not answer after 10 s", addr)
		}
	}
}
