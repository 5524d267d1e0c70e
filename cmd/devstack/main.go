// Command devstack runs the main job of `make run`: a local single-member etcd (a process
// of $ETCDSD_ETCD, bin/etcd under make, its data in a folder of its own), loaded with the example records, and the CoreDNS build
// with etcdsd serving them, until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/etcdsd/etcdsd/internal/devetcd"

	"github.com/miekg/dns"
)

func main() {
	var (
		data     = flag.String("data", ".run/etcd", "etcd data directory")
		etcdPort = flag.Int("etcd-port", 2379, "etcd client port on 127.0.0.1")
		records  = flag.String("records", "testdata/seed.records", "records to load, KEY VALUE per line")
		coredns  = flag.String("coredns", "bin/coredns", "CoreDNS binary")
		conf     = flag.String("conf", "Corefile", "Corefile")
		dnsPort  = flag.Int("dns-port", 1053, "DNS port on 127.0.0.1 (etcdsd; the built-in etcd plugin on the next one)")
		ready    = flag.Int("ready-port", 8181, "ready plugin's port on 127.0.0.1")
		metrics  = flag.Int("metrics-port", 9153, "prometheus plugin's port on 127.0.0.1")
	)
	flag.Parse()
	if err := run(*data, *records, *coredns, *conf, stackPorts{etcd: *etcdPort, dns: *dnsPort, ready: *ready, metrics: *metrics}); err != nil {
		log.Fatal(err)
	}
}

// stackPorts are the ports on 127.0.0.1 the stack serves.
type stackPorts struct{ etcd, dns, ready, metrics int }

func run(data, records, coredns, conf string, ports stackPorts) error {
	err := checkPorts([]port{
		{number: ports.etcd, use: "etcd's client port", flag: "RUN_ETCD_PORT"},
		{number: ports.dns, udp: true, use: "etcdsd's DNS port", flag: "RUN_DNS_PORT"},
		{number: ports.dns + 1, udp: true, use: "the built-in etcd plugin's DNS port, the next after etcdsd's", flag: "RUN_DNS_PORT"},
		{number: ports.ready, use: "the ready plugin's port", flag: "RUN_READY_PORT"},
		{number: ports.metrics, use: "the prometheus plugin's port", flag: "RUN_METRICS_PORT"},
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	// etcd waits without a word for the lock of a data directory another etcd holds.
	lock, err := os.OpenFile(filepath.Join(data, "devstack.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("%s is the data of another make run (%v): stop it, or give this one other data and ports: make run RUN_DATA=.run/etcd2 RUN_ETCD_PORT=23790 RUN_DNS_PORT=10530 RUN_READY_PORT=18181 RUN_METRICS_PORT=19153", data, err)
	}
	etcdPort, dnsPort := ports.etcd, ports.dns
	etcd, err := devetcd.Start(data, etcdPort)
	if err != nil {
		return err
	}
	defer etcd.Close()
	cli, err := etcd.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	n, err := devetcd.LoadRecords(ctx, cli, records)
	cancel()
	cli.Close()
	if err != nil {
		return err
	}
	log.Printf("etcd on %s (data in %s), %d records from %s", etcd.Endpoint, data, n, records)

	cmd := exec.Command(coredns, "-conf", conf)
	cmd.Env = append(os.Environ(),
		"DNS_PORT="+strconv.Itoa(dnsPort),
		"BUILTIN_DNS_PORT="+strconv.Itoa(dnsPort+1),
		"ETCD_ENDPOINT="+etcd.Endpoint,
		"READY_PORT="+strconv.Itoa(ports.ready),
		"METRICS_PORT="+strconv.Itoa(ports.metrics),
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	addr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	if err := waitAnswer(addr, exited); err != nil {
		return err
	}
	fmt.Printf(`
etcdsd is answering on %[1]s. Try:
  dig +short @127.0.0.1 -p %[2]d SRV _web._tcp.example.local
  dig +short @127.0.0.1 -p %[2]d A   _web._tcp.example.local
  dig +short @127.0.0.1 -p %[2]d SRV _app._tcp.example.local
  dig +short @127.0.0.1 -p %[2]d A   _app._tcp.example.local
The built-in etcd plugin serves the same data on port %[4]d, for comparison.
Change the records with bin/etcdctl (endpoint %[3]s); metrics on http://127.0.0.1:%[5]d/metrics.
Ctrl-C stops CoreDNS and etcd.
`, addr, dnsPort, etcd.Endpoint, dnsPort+1, ports.metrics)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		return nil
	case err := <-exited:
		return fmt.Errorf("coredns exited: %v", err)
	}
}

// waitAnswer waits until CoreDNS answers for the example records.
func waitAnswer(addr string, exited <-chan error) error {
	q := new(dns.Msg).SetQuestion("_web._tcp.example.local.", dns.TypeSRV)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("coredns exited while starting: %v", err)
		default:
		}
		if m, err := dns.Exchange(q, addr); err == nil && len(m.Answer) > 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("coredns gave no answer for _web._tcp.example.local within 30s")
}
