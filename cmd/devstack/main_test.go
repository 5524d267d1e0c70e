package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

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
		{"etcd", "tcp", func(p stackPorts) int { return p.etcd }, "etcd's client port"},
		{"dns over udp", "udp", func(p stackPorts) int { return p.dns }, "etcdsd's DNS port"},
		{"dns over tcp", "tcp", func(p stackPorts) int { return p.dns }, "etcdsd's DNS port"},
		{"built-in's dns", "udp", func(p stackPorts) int { return p.dns + 1 }, "the built-in etcd plugin's DNS port"},
		{"ready", "tcp", func(p stackPorts) int { return p.ready }, "the ready plugin's port"},
		{"metrics", "tcp", func(p stackPorts) int { return p.metrics }, "the prometheus plugin's port"},
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
			err := run(data, "../../testdata/seed.records", "no-coredns-needed", "../../Corefile", ports)
			if err == nil {
				t.Fatal("run started with a port taken")
			}
			want := "port " + strconv.Itoa(tc.port(ports)) + " (" + tc.use + ") is in use"
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
	err := run(t.TempDir()+"/etcd", "../../testdata/seed.records", "no-coredns-needed", "../../Corefile", ports)
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
