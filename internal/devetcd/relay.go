package devetcd

import (
	"io"
	"net"
	"sync"
)

// Relay forwards TCP connections from Addr to a target until cut: then it closes them all
// and every new one at once, as a network partition does, until let back.
type Relay struct {
	Addr   string // host:port to connect to instead of the target
	target string
	ln     net.Listener
	mu     sync.Mutex
	off    bool
	conns  map[net.Conn]bool
}

// StartRelay listens on a free loopback port and forwards to target (host:port).
func StartRelay(target string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r, nil
}

func (r *Relay) serve(c net.Conn) {
	r.mu.Lock()
	off := r.off
	r.mu.Unlock()
	if off {
		c.Close()
		return
	}
	t, err := net.Dial("tcp", r.target)
	if err != nil {
		c.Close()
		return
	}
	r.mu.Lock()
	r.conns[c], r.conns[t] = true, true
	r.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go pipe(t, c)
	pipe(c, t)
	r.mu.Lock()
	delete(r.conns, c)
	delete(r.conns, t)
	r.mu.Unlock()
}

// Cut closes every connection and refuses new ones while off.
func (r *Relay) Cut(off bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.off = off
	if off {
		for c := range r.conns {
			c.Close()
		}
	}
}

// Close stops listening and closes every connection.
func (r *Relay) Close() {
	r.ln.Close()
	r.Cut(true)
}
