// Package faultproxy is a TCP proxy for tests that sits on loopback between
// Redis clients and one Redis server and injects, when a test asks, the
// faults a network and a server show in production:
//
//   - a lost reply (DropReply): the command reaches the server and runs,
//     the proxy reads the server's whole reply and closes the client's
//     connection instead of forwarding it. The client sees io.EOF, which
//     go-redis treats as retryable: it sends the command again on a new
//     connection, so the server runs it twice;
//   - a stall (Stall, StallFor, StallOn, Release): no byte moves in either
//     direction until released, as when a server hangs or the network drops
//     packets; connections stay open;
//   - a reset (Reset): every open connection is closed with a TCP reset.
//
// With no fault armed it passes every byte through unchanged.
//
// To drop "the reply to a command" the proxy follows the protocol: it
// parses each command a client sends (a RESP array of bulk strings, or an
// inline command) and each reply the server sends (every RESP2 and RESP3
// type: simple string, error, integer, bulk string, array, null, double,
// boolean, big number, bulk error, verbatim string, map, set, attribute,
// push), and pairs replies with commands in order. That makes a drop exact
// and deterministic: it hits the first matching command whose reply is not
// an error (so a NOSCRIPT answer to EVALSHA passes and the EVAL that
// follows is the one dropped — the server did run it). RESP3 push messages
// are forwarded and paired with no command; connections in RESP2 pub/sub
// mode are not supported (their messages look like replies).
//
// Every goroutine the proxy starts stops in Close.
package faultproxy

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// A Filter selects the commands a fault applies to, by their arguments
// (args[0] is the command name, in the case the client sent it).
type Filter func(args []string) bool

// Any selects every command.
func Any() Filter { return func([]string) bool { return true } }

// Command selects commands named one of names, in any case.
func Command(names ...string) Filter {
	return func(args []string) bool {
		return len(args) > 0 && slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, args[0]) })
	}
}

// Scripts selects the commands that run a Lua script or function: EVAL,
// EVALSHA, their _RO forms, FCALL and FCALL_RO.
func Scripts() Filter {
	return Command("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO")
}

// ArgContains selects commands one of whose arguments (name included)
// contains sub.
func ArgContains(sub string) Filter {
	return func(args []string) bool {
		return slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, sub) })
	}
}

// And selects commands both f and g select.
func (f Filter) And(g Filter) Filter {
	return func(args []string) bool { return f(args) && g(args) }
}

// Proxy forwards TCP connections from its loopback address to a target.
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	pairs   map[*pair]struct{}
	drop    *dropFault    // armed reply drop, or nil
	dropped []string      // names of the commands whose reply was dropped
	gate    chan struct{} // nil: traffic flows; else closed on release
	stallOn Filter        // armed StallOn, or nil
	timer   *time.Timer   // ends a StallFor
}

type dropFault struct {
	filter Filter
	left   int
}

// pair is one client connection and its connection to the target.
type pair struct {
	client, server net.Conn
	done           chan struct{} // closed when the pair is torn down
	once           sync.Once

	mu      sync.Mutex
	pending []pendingCmd // forwarded commands awaiting their reply, in order
}

type pendingCmd struct {
	name      string
	candidate bool // matched the armed drop's filter when sent
}

// Start listens on a free loopback port and forwards every connection it
// accepts to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, pairs: make(map[*pair]struct{})}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr returns the proxy's address (127.0.0.1:port) for clients to dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// DropReply arms one lost reply: the next command that f selects and that
// the server answers with anything but an error runs on the server, and
// its client's connection is closed in place of the reply. A new call
// replaces a drop still armed (a command already sent when it is armed is
// judged by the filter armed at the time it was sent).
func (p *Proxy) DropReply(f Filter) { p.DropReplies(1, f) }

// DropReplies is DropReply for the next n such commands.
func (p *Proxy) DropReplies(n int, f Filter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop = nil
	if n > 0 {
		p.drop = &dropFault{filter: f, left: n}
	}
}

// Disarm cancels the drops still armed.
func (p *Proxy) Disarm() { p.DropReplies(0, nil) }

// Dropped returns the names of the commands whose reply was dropped so
// far, in order, as the client sent them.
func (p *Proxy) Dropped() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.dropped)
}

// Stall holds all traffic, in both directions and on every connection, new
// ones included, until Release. Bytes already read are held, not lost:
// they are forwarded on Release unless their connection was reset.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTimer()
	if p.gate == nil && !p.closed {
		p.gate = make(chan struct{})
	}
}

// StallOn arms a stall that starts when a client sends a command f
// selects: that command and all traffic after it are held, as by Stall,
// until Release. It lets a test stall one step of an operation, after the
// steps before it went through.
func (p *Proxy) StallOn(f Filter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stallOn = f
}

// StallFor is Stall followed by Release after d.
func (p *Proxy) StallFor(d time.Duration) {
	p.Stall()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.timer = time.AfterFunc(d, p.Release)
	}
}

// Release lets traffic flow again after Stall.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTimer()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

func (p *Proxy) stopTimer() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// Reset closes every open connection, client and server side, with a TCP
// reset, and drops whatever the proxy held for them. It returns how many
// connections it closed. New connections are accepted as before.
func (p *Proxy) Reset() int {
	p.mu.Lock()
	pairs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	p.mu.Unlock()
	for _, pr := range pairs {
		p.teardown(pr, true)
	}
	return len(pairs)
}

// Conns returns how many client connections are open.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// Close stops accepting, closes every connection, releases a stall and
// returns once every goroutine of the proxy has stopped. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Reset()
	p.Release()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			_ = client.Close()
			continue
		}
		pr := &pair{client: client, server: server, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = client.Close()
			_ = server.Close()
			return
		}
		p.pairs[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.commands(pr) })
		p.wg.Go(func() { p.replies(pr) })
	}
}

// teardown closes both connections of pr once; with rst, as a TCP reset.
func (p *Proxy) teardown(pr *pair, rst bool) {
	pr.once.Do(func() {
		if rst {
			for _, c := range []net.Conn{pr.client, pr.server} {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
			}
		}
		_ = pr.client.Close()
		_ = pr.server.Close()
		close(pr.done)
		p.mu.Lock()
		delete(p.pairs, pr)
		p.mu.Unlock()
	})
}

// pass waits while traffic is stalled; false means pr was torn down.
func (p *Proxy) pass(pr *pair) bool {
	for {
		p.mu.Lock()
		g := p.gate
		p.mu.Unlock()
		if g == nil {
			select {
			case <-pr.done:
				return false
			default:
				return true
			}
		}
		select {
		case <-g:
		case <-pr.done:
			return false
		}
	}
}

// commands forwards pr's commands from client to server, noting each.
func (p *Proxy) commands(pr *pair) {
	defer p.teardown(pr, false)
	r := bufio.NewReaderSize(pr.client, 64<<10)
	var buf []byte
	for {
		raw, args, err := readCommand(r, buf)
		if err != nil {
			return
		}
		buf = raw
		if len(args) == 0 {
			args = []string{""}
		}
		p.mu.Lock()
		candidate := p.drop != nil && p.drop.filter(args)
		if p.stallOn != nil && p.stallOn(args) {
			p.stallOn = nil
			p.stopTimer()
			if p.gate == nil && !p.closed {
				p.gate = make(chan struct{})
			}
		}
		p.mu.Unlock()
		pr.mu.Lock()
		pr.pending = append(pr.pending, pendingCmd{name: args[0], candidate: candidate})
		pr.mu.Unlock()
		if !p.pass(pr) {
			return
		}
		if _, err := pr.server.Write(raw); err != nil {
			return
		}
	}
}

// replies forwards pr's replies from server to client, or drops one and
// closes the connection when an armed drop says so.
func (p *Proxy) replies(pr *pair) {
	defer p.teardown(pr, false)
	r := bufio.NewReaderSize(pr.server, 64<<10)
	var buf []byte
	for {
		raw, kind, err := readReply(r, buf)
		if err != nil {
			return
		}
		buf = raw
		if kind != '>' { // a push message answers no command
			pr.mu.Lock()
			var cmd pendingCmd
			if len(pr.pending) > 0 {
				cmd = pr.pending[0]
				pr.pending = pr.pending[1:]
			}
			pr.mu.Unlock()
			if cmd.candidate && kind != '-' && kind != '!' && p.consumeDrop(cmd.name) {
				return // the deferred teardown closes the client's connection
			}
		}
		if !p.pass(pr) {
			return
		}
		if _, err := pr.client.Write(raw); err != nil {
			return
		}
	}
}

// consumeDrop takes one armed drop, if any is left, for command name.
func (p *Proxy) consumeDrop(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drop == nil {
		return false
	}
	p.drop.left--
	if p.drop.left <= 0 {
		p.drop = nil
	}
	p.dropped = append(p.dropped, name)
	return true
}
