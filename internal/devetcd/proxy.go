package devetcd

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Proxy is etcd's gRPC proxy ("etcd grpc-proxy start") as a process of its own: it
// coalesces the identical watches of its clients into one watch on the cluster.
type Proxy struct {
	Endpoint string // http://127.0.0.1:PORT, for clients
	Metrics  string // its Prometheus metrics URL
	args     []string
	proc     *process // the process of the latest Restart
}

// StartProxy starts bin's gRPC proxy in front of endpoints (Restart).
func StartProxy(bin string, endpoints []string) (*Proxy, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	metrics, err := FreePort()
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port),
		Metrics:  fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics),
	}
	p.args = []string{bin, "grpc-proxy", "start", "--endpoints=" + strings.Join(endpoints, ","),
		fmt.Sprintf("--listen-addr=127.0.0.1:%d", port), fmt.Sprintf("--metrics-addr=http://127.0.0.1:%d", metrics)}
	if err := p.Restart(); err != nil {
		return nil, err
	}
	return p, nil
}

// Restart starts the proxy (again, after Stop) on its ports and waits until a read
// through it succeeds.
func (p *Proxy) Restart() error {
	proc, err := startProcess(p.args[0], p.args[1:]...)
	if err != nil {
		return err
	}
	p.proc = proc
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{p.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		p.Stop()
		return err
	}
	defer cli.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "/", clientv3.WithCountOnly())
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return fmt.Errorf("grpc-proxy not serving: %v\n%s", err, p.proc.logs.String())
		}
	}
}

// Pid returns the proxy's process id.
func (p *Proxy) Pid() int { return p.proc.cmd.Process.Pid }

// Logs returns what the proxy wrote since its latest Restart.
func (p *Proxy) Logs() string { return p.proc.logs.String() }

// Stop ends the proxy.
func (p *Proxy) Stop() {
	p.proc.cmd.Process.Signal(syscall.SIGKILL)
	<-p.proc.exited
}
