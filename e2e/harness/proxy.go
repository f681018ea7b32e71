package harness

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP load balancer on 127.0.0.1 in front of several ATTEST replicas, as a Service is: each connection
// goes to the next backend in turn, or to the one after when that one refuses (as a Service's endpoints drop a Pod
// that died); bytes are copied both ways unchanged, so TLS is between the API server and the replica.
type Proxy struct {
	l        net.Listener
	backends []string
	stats    []backendStats
	next     atomic.Uint64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

type backendStats struct{ active, total, refused atomic.Int64 }

// BackendStats count a backend's connections.
type BackendStats struct {
	Addr string
	// Active connections now, Total since the start, and Refused dials (the backend was down).
	Active, Total, Refused int64
}

// StartProxy listens on addr (host:port) and balances over backends (host:port each).
func StartProxy(addr string, backends ...string) (*Proxy, error) {
	if len(backends) == 0 {
		return nil, errors.New("proxy: no backends")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, backends: backends, stats: make([]backendStats, len(backends)), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is where the proxy listens.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Stats reports each backend's connections.
func (p *Proxy) Stats() []BackendStats {
	out := make([]BackendStats, len(p.backends))
	for i, b := range p.backends {
		out[i] = BackendStats{Addr: b, Active: p.stats[i].active.Load(), Total: p.stats[i].total.Load(), Refused: p.stats[i].refused.Load()}
	}
	return out
}

// Close stops listening, closes every connection and waits for the copies to end; safe twice.
func (p *Proxy) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.l.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track adds c to the connections Close closes; false when the proxy is closing.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	for {
		client, err := p.l.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(client) {
			_ = client.Close()
			return
		}
		p.wg.Go(func() { p.serve(client) })
	}
}

// serve connects client to the next backend that accepts and copies until either side closes.
func (p *Proxy) serve(client net.Conn) {
	defer p.untrack(client)
	first := int(p.next.Add(1)-1) % len(p.backends)
	for k := range p.backends {
		i := (first + k) % len(p.backends)
		backend, err := net.DialTimeout("tcp", p.backends[i], time.Second)
		if err != nil {
			p.stats[i].refused.Add(1)
			continue
		}
		if !p.track(backend) {
			_ = backend.Close()
			return
		}
		p.stats[i].active.Add(1)
		p.stats[i].total.Add(1)
		done := make(chan struct{}, 2)
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			done <- struct{}{}
		}
		go pipe(backend, client)
		go pipe(client, backend)
		<-done // one side ended: end both, as a connection through a dead Pod ends
		p.untrack(backend)
		_ = client.Close()
		<-done
		p.stats[i].active.Add(-1)
		return
	}
}
