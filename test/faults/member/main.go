// Command member runs one etcd member on loopback until it is signalled, so that the fault
// tests can kill, freeze and restart members as processes.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/etcdsd/etcdsd/internal/devetcd"
)

func main() {
	var m devetcd.Member
	flag.StringVar(&m.Name, "name", "", "member name")
	flag.StringVar(&m.Dir, "dir", "", "data directory")
	flag.IntVar(&m.ClientPort, "client-port", 0, "client port on 127.0.0.1")
	flag.IntVar(&m.PeerPort, "peer-port", 0, "peer port on 127.0.0.1")
	flag.StringVar(&m.InitialCluster, "initial-cluster", "", "NAME=http://127.0.0.1:PORT,...")
	flag.Parse()

	srv, err := m.Start()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready", srv.Endpoint)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-sig:
	case err := <-srv.Err():
		log.Print(err)
	}
	srv.Close()
}
