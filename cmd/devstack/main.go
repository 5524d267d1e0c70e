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
		data    = flag.String("data", ".run/etcd", "etcd data directory")
		records = flag.String("records", "testdata/seed.records", "records to load, KEY VALUE per line")
		coredns = flag.String("coredns", "bin/coredns", "CoreDNS binary")
		conf    = flag.String("conf", "Corefile", "Corefile")
		ports   = stackPorts{etcd: 2379, dns: 1053, ready: 8181, metrics: 9153}
	)
	portFlag(flag.CommandLine, &ports.etcd, "etcd-port", "RUN_ETCD_PORT", "etcd client port on 127.0.0.1")
	portFlag(flag.CommandLine, &ports.dns, "dns-port", "RUN_DNS_PORT", "DNS port on 127.0.0.1 (etcdsd; the built-in etcd plugin on the next one)")
	portFlag(flag.CommandLine, &ports.ready, "ready-port", "RUN_READY_PORT", "ready plugin's port on 127.0.0.1")
	portFlag(flag.CommandLine, &ports.metrics, "metrics-port", "RUN_METRICS_PORT", "prometheus plugin's port on 127.0.0.1")
	flag.Parse()
	// make run's etcd is bin/etcd, beside devstack: run without make, devstack takes it
	// too rather than build one.
	if os.Getenv("ETCDSD_ETCD") == "" {
		if self, err := os.Executable(); err == nil {
			if bin := filepath.Join(filepath.Dir(self), "etcd"); fileExists(bin) {
				os.Setenv("ETCDSD_ETCD", bin)
			}
		}
	}
	// Ctrl-C at any point stops what has started; what is still starting sees ctx end.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *data, *records, *coredns, *conf, ports); err != nil {
		log.Fatal(err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// portFlag defines a port flag whose error names the make variable that sets it, since
// `make run` users give RUN_ETCD_PORT=..., not -etcd-port.
func portFlag(fs *flag.FlagSet, p *int, name, makeVar, usage string) {
	fs.Func(name, fmt.Sprintf("%s (make run %s=PORT; default %d)", usage, makeVar, *p), func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%s=%q is no port number: give one from 1 to 65535", makeVar, s)
		}
		*p = n
		return nil
	})
}

// stackPorts are the ports on 127.0.0.1 the stack serves.
type stackPorts struct{ etcd, dns, ready, metrics int }

func run(ctx context.Context, data, records, coredns, conf string, ports stackPorts) error {
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
	// A data directory of an etcd make run did not start is someone's data.
	_, member := os.Stat(filepath.Join(data, "member"))
	if _, ours := os.Stat(filepath.Join(data, "devstack.lock")); member == nil && ours != nil {
		return fmt.Errorf("%s holds the data of an etcd that make run did not start: give make run a directory of its own, make run RUN_DATA=.run/etcd", data)
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
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	n, err := devetcd.LoadRecords(lctx, cli, records)
	cancel()
	cli.Close()
	if ctx.Err() != nil {
		log.Print("interrupted while loading the records; stopping etcd")
		return nil
	}
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
	devetcd.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	running := true
	defer func() { // before etcd's Close: CoreDNS goes first
		if running {
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
		}
	}()

	addr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	if err := waitAnswer(ctx, addr, exited); err != nil || ctx.Err() != nil {
		running = !errors.Is(err, errExited)
		if err == nil {
			log.Print("interrupted while CoreDNS was starting; stopping CoreDNS and etcd")
		}
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

	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		running = false
		return fmt.Errorf("coredns exited: %v", err)
	}
}

var errExited = errors.New("coredns exited while starting")

// waitAnswer waits until CoreDNS answers for the example records, and returns nil early
// when ctx ends (Ctrl-C).
func waitAnswer(ctx context.Context, addr string, exited <-chan error) error {
	q := new(dns.Msg).SetQuestion("_web._tcp.example.local.", dns.TypeSRV)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("%w: %v", errExited, err)
		case <-ctx.Done():
			return nil
		default:
		}
		if m, err := dns.Exchange(q, addr); err == nil && len(m.Answer) > 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("coredns gave no answer for _web._tcp.example.local within 30s")
}
