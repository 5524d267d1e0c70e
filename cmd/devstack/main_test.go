package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdsd/etcdsd/internal/devetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func freePorts(t *testing.T) stackPorts {
	return stackPorts{etcd: devetcd.FreePortFor(t), dns: devetcd.FreePortFor(t), ready: devetcd.FreePortFor(t), metrics: devetcd.FreePortFor(t)}
}

// Each port of the stack, taken, stops it before anything starts, naming the port, its use
// and (where ss or lsof can tell) what holds it.
func TestRefusesTakenPorts(t *testing.T) {
	tests := []struct {
		name    string
		network string
		port    func(stackPorts) int
		use     string
	}{
		{"etcd", "tcp", func(p stackPorts) int { return p.etcd }, "etcd's client port) is in use by devstack.test (pid"},
		{"dns over udp", "udp", func(p stackPorts) int { return p.dns }, "etcdsd's DNS port) is in use"},
		{"dns over tcp", "tcp", func(p stackPorts) int { return p.dns }, "etcdsd's DNS port) is in use"},
		{"built-in's dns", "udp", func(p stackPorts) int { return p.dns + 1 }, "the built-in etcd plugin's DNS port, the next after etcdsd's) is in use by devstack.test (pid"},
		{"ready", "tcp", func(p stackPorts) int { return p.ready }, "the ready plugin's port) is in use by devstack.test (pid"},
		{"ready's make variable", "tcp", func(p stackPorts) int { return p.ready }, "; stop it, or give make run another: make run RUN_READY_PORT=PORT"},
		{"metrics", "tcp", func(p stackPorts) int { return p.metrics }, "the prometheus plugin's port) is in use by devstack.test (pid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ports := freePorts(t)
			addr := "127.0.0.1:" + strconv.Itoa(tc.port(ports))
			if tc.network == "udp" {
				c, err := net.ListenPacket("udp", addr)
				if err != nil {
					t.Skipf("port of the test taken: %v", err)
				}
				defer c.Close()
			} else {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Skipf("port of the test taken: %v", err)
				}
				defer l.Close()
			}
			data := t.TempDir() + "/etcd"
			err := run(t.Context(), data, "../../testdata/seed.records", "no-coredns-needed", "../../Corefile", ports)
			if err == nil {
				t.Fatal("run started with a port taken")
			}
			want := tc.use
			if !strings.HasPrefix(want, ";") {
				want = "port " + strconv.Itoa(tc.port(ports)) + " (" + want
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want it to say %q", err, want)
			}
			t.Log(err)
		})
	}
}

// With another etcd on its etcd port, make run refuses, and that etcd gets no record.
func TestNeverWritesToAnotherEtcd(t *testing.T) {
	_, other, cli := devetcd.StartFor(t)
	t.Cleanup(other.Close)
	ports := freePorts(t)
	ports.etcd = other.Port()
	err := run(t.Context(), t.TempDir()+"/etcd", "../../testdata/seed.records", "no-coredns-needed", "../../Corefile", ports)
	if err == nil {
		t.Fatal("run started beside another etcd on its port")
	}
	if !strings.Contains(err.Error(), "port "+strconv.Itoa(other.Port())) {
		t.Errorf("error %q does not name the port", err)
	}
	resp, err2 := cli.Get(context.Background(), "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err2 != nil {
		t.Fatal(err2)
	}
	if resp.Count != 0 {
		t.Errorf("the other etcd now holds %d keys", resp.Count)
	}
	t.Log(err)
}

// Ports that are no port, or two uses on one port, and a data directory another stack
// holds, are refused before anything starts, each naming the make variable that moves it.
func TestRefusesBadPortsAndSharedData(t *testing.T) {
	ports := freePorts(t)
	same := ports
	same.metrics = same.etcd
	high := ports
	high.dns = 65535
	for _, tc := range []struct {
		name  string
		ports stackPorts
		want  string
	}{
		{"two uses on one port", same, "is both etcd's client port and the prometheus plugin's port: give another with make run RUN_METRICS_PORT=PORT"},
		{"the built-in's port past 65535", high, "port 65536 (the built-in etcd plugin's DNS port, the next after etcdsd's) is not a port from 1 to 65535: give another with make run RUN_DNS_PORT=PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), t.TempDir(), "../../testdata/seed.records", "no-coredns-needed", "../../Corefile", tc.ports)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
	t.Run("data of an etcd it did not start", func(t *testing.T) {
		data := t.TempDir()
		if err := os.Mkdir(filepath.Join(data, "member"), 0o700); err != nil {
			t.Fatal(err)
		}
		err := run(t.Context(), data, "../../testdata/seed.records", "no-coredns-needed", "../../Corefile", freePorts(t))
		if want := "holds the data of an etcd that make run did not start"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
		if _, err := os.Stat(filepath.Join(data, "devstack.lock")); err == nil {
			t.Error("run wrote devstack.lock into another etcd's data")
		}
	})
	t.Run("a port that is no number", func(t *testing.T) {
		fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		port := 2379
		portFlag(fs, &port, "etcd-port", "RUN_ETCD_PORT", "etcd client port")
		err := fs.Parse([]string{"-etcd-port", "23x9"})
		if want := `RUN_ETCD_PORT="23x9" is no port number`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	})
	t.Run("data of another stack", func(t *testing.T) {
		data := t.TempDir()
		lock, err := os.OpenFile(filepath.Join(data, "devstack.lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		err = run(t.Context(), data, "../../testdata/seed.records", "no-coredns-needed", "../../Corefile", freePorts(t))
		if want := "is the data of another make run"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	})
}

// Ctrl-C while CoreDNS is starting stops CoreDNS and etcd: nothing is left holding the
// stack's ports.
func TestInterruptedStartLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "coredns.pid")
	// A CoreDNS that never answers, which records its pid.
	fake := filepath.Join(dir, "coredns")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ports := freePorts(t)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, filepath.Join(dir, "etcd"), "../../testdata/seed.records", fake, "../../Corefile", ports)
	}()
	var pid int
	for pid == 0 {
		select {
		case err := <-done:
			t.Fatalf("run ended before CoreDNS started: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after Ctrl-C: %v, want nil", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("CoreDNS (pid %d) still runs after run returned: %v", pid, err)
	}
	if err := bindable("tcp", "127.0.0.1:"+strconv.Itoa(ports.etcd)); err != nil {
		t.Errorf("etcd's port still taken after run returned: %v", err)
	}
}
