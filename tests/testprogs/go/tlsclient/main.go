// Command tlsclient drives crypto/tls directly for the hard cases of tlstap's
// Go support. Connection i sends
//
//	POST /conn<i> HTTP/1.1 ... Content-Length: <size + 97*i> + pattern(size + 97*i, "go conn <i>")
//
// (the bytes tests/bpf/harness.py's http_post and pattern make) and reads the
// reply until the server closes. Modes:
//
//	-conns N        N connections at once, one goroutine each;
//	-write-size W   the request in Writes of W bytes (0: one Write of it all);
//	-read-size R    the reply in a loop of Reads into an R-byte buffer;
//	-stack          every body Write and every Read from a buffer on the
//	                stack of a fresh goroutine, at a recursion depth one frame
//	                deeper than the call before: some calls must grow (move)
//	                the stack while they run;
//	-wrap           TLS over a net.Conn of this program's own type wrapping
//	                the *net.TCPConn (as a metrics or rate-limiting wrapper
//	                does): no path from the tls.Conn's fields to an fd;
//	-decoy          a wrapper whose first word leads, where a netFD keeps its
//	                Sysfd, to the fd of a TCP listener of this program: a
//	                walk of the fields that does not check it found a netFD
//	                would name that listener's socket.
//
// It prints {"locals": [...]} once every handshake is done (after which, with
// -wait, it waits for a line on stdin), then {"connections": [...]} with what
// each connection read and how often the stack moved during a call.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"
)

const stackChunk = 512 // bytes per stack-buffer call

func emit(record map[string]interface{}) {
	line, err := json.Marshal(record)
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(append(line, '\n'))
}

// pattern is harness.py's pattern(): sha256("<seed>:<counter>") blocks.
func pattern(size int, seed string) []byte {
	out := make([]byte, 0, size+sha256.Size)
	for counter := 0; len(out) < size; counter++ {
		block := sha256.Sum256([]byte(fmt.Sprintf("%s:%d", seed, counter)))
		out = append(out, block[:]...)
	}
	return out[:size]
}

func request(address string, index, size int) []byte {
	body := pattern(size+97*index, fmt.Sprintf("go conn %d", index))
	head := fmt.Sprintf("POST /conn%d HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Length: %d\r\n\r\n", index, address, len(body))
	return append([]byte(head), body...)
}

// ---------------------------------------------------------------- stack growth

// atDepth calls f below depth frames of its own.
//
//go:noinline
func atDepth(depth int, f func()) byte {
	var frame [96]byte // what each level adds to the stack
	frame[depth%len(frame)] = byte(depth)
	if depth == 0 {
		f()
	} else {
		frame[0] += atDepth(depth-1, f)
	}
	return frame[depth*7%len(frame)]
}

// onFreshGoroutine runs f at a recursion depth on a new goroutine, whose
// stack starts small (2 KiB) and grows by copying as calls need more.
func onFreshGoroutine(depth int, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		atDepth(depth, f)
	}()
	<-done
}

// addressOf hides a pointer from escape analysis.
//
//go:noinline
func addressOf(p *byte) uintptr { return uintptr(unsafe.Pointer(p)) }

// writeFromStack writes data (at most stackChunk bytes) from a buffer on the
// stack and tells whether the stack moved during the call. (*tls.Conn).Write's
// argument escapes, so the compiler alone would put the buffer on the heap;
// hiding it keeps it on the stack, where Go moves it if the stack grows.
func writeFromStack(conn *tls.Conn, data []byte) (moved bool, err error) {
	var buf [stackChunk]byte
	n := copy(buf[:], data)
	before := addressOf(&buf[0])
	_, err = conn.Write((*[stackChunk]byte)(unsafe.Pointer(before))[:n:n])
	return addressOf(&buf[0]) != before, err
}

// readIntoStack reads into a buffer on the stack ((*tls.Conn).Read's argument
// does not escape: plain Go code does this) and tells whether the stack moved.
func readIntoStack(conn *tls.Conn) (data []byte, moved bool, err error) {
	var buf [stackChunk]byte
	before := addressOf(&buf[0])
	n, err := conn.Read(buf[:])
	return append([]byte(nil), buf[:n]...), addressOf(&buf[0]) != before, err
}

// ---------------------------------------------------------------- connections

type options struct {
	writeSize, readSize int
	stack               bool
}

type result struct {
	Local          string `json:"local"`
	ResponseLen    int    `json:"response_len"`
	ResponseSHA256 string `json:"response_sha256"`
	Writes         int    `json:"writes"`
	WritesMoved    int    `json:"writes_moved"`
	Reads          int    `json:"reads"`
	ReadsMoved     int    `json:"reads_moved"`
	Error          string `json:"error,omitempty"`
}

func (r *result) send(conn *tls.Conn, data []byte, o options) error {
	if o.stack {
		// The head from the heap, then the body from the stack, one level deeper per call.
		head := bytes.Index(data, []byte("\r\n\r\n")) + 4
		if _, err := conn.Write(data[:head]); err != nil {
			return err
		}
		r.Writes++
		for offset := head; offset < len(data); offset += stackChunk {
			var moved bool
			var err error
			chunk := data[offset:min(offset+stackChunk, len(data))]
			onFreshGoroutine(r.Writes, func() { moved, err = writeFromStack(conn, chunk) })
			if err != nil {
				return err
			}
			r.Writes++
			if moved {
				r.WritesMoved++
			}
		}
		return nil
	}
	step := o.writeSize
	if step == 0 {
		step = len(data)
	}
	for offset := 0; offset < len(data); offset += step {
		if _, err := conn.Write(data[offset:min(offset+step, len(data))]); err != nil {
			return err
		}
		r.Writes++
	}
	return nil
}

func (r *result) receive(conn *tls.Conn, o options) ([]byte, error) {
	var response []byte
	buf := make([]byte, o.readSize)
	for {
		var data []byte
		var err error
		if o.stack {
			var moved bool
			onFreshGoroutine(r.Reads, func() { data, moved, err = readIntoStack(conn) })
			if moved {
				r.ReadsMoved++
			}
		} else {
			var n int
			n, err = conn.Read(buf)
			data = buf[:n]
		}
		r.Reads++
		response = append(response, data...)
		if err == io.EOF {
			return response, nil
		}
		if err != nil {
			return response, err
		}
	}
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func exchange(conn *tls.Conn, data []byte, o options) result {
	r := result{Local: conn.LocalAddr().String()}
	err := r.send(conn, data, o)
	var response []byte
	if err == nil {
		response, err = r.receive(conn, o)
	}
	if err != nil {
		r.Error = err.Error()
	}
	sum := sha256.Sum256(response)
	r.ResponseLen, r.ResponseSHA256 = len(response), hex.EncodeToString(sum[:])
	return r
}

// wrappedConn is a net.Conn that is not a *net.TCPConn.
type wrappedConn struct {
	net.Conn
	written int
}

func (w *wrappedConn) Write(b []byte) (int, error) {
	n, err := w.Conn.Write(b)
	w.written += n
	return n, err
}

// decoyConn starts with a pointer to words whose third holds a socket fd,
// as netFD.pfd.Sysfd would; the rest are zero (no netFD family or type).
type decoyConn struct {
	decoy *[9]int64
	net.Conn
}

// listenerFd is the fd of a fresh TCP listener on loopback, kept open.
func listenerFd() int64 {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	raw, err := listener.(*net.TCPListener).SyscallConn()
	if err != nil {
		log.Fatal(err)
	}
	var fd int64
	raw.Control(func(f uintptr) { fd = int64(f) })
	return fd
}

func dial(dialer *net.Dialer, address string, config *tls.Config, wrap, decoy bool) (*tls.Conn, error) {
	if !wrap && !decoy {
		return tls.DialWithDialer(dialer, "tcp", address, config)
	}
	raw, err := dialer.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	var inner net.Conn = &wrappedConn{Conn: raw}
	if decoy {
		inner = &decoyConn{decoy: &[9]int64{2: listenerFd()}, Conn: raw}
	}
	conn := tls.Client(inner, config)
	return conn, conn.Handshake()
}

func main() {
	address := flag.String("addr", "", "server host:port")
	cafile := flag.String("cafile", "", "PEM certificate to trust")
	conns := flag.Int("conns", 1, "connections, one goroutine each")
	size := flag.Int("size", 1000, "request body bytes of connection 0 (connection i: size + 97*i)")
	var o options
	flag.IntVar(&o.writeSize, "write-size", 0, "bytes per Write (0: the whole request in one)")
	flag.IntVar(&o.readSize, "read-size", 16384, "bytes per Read")
	flag.BoolVar(&o.stack, "stack", false, "Write and Read from stack buffers at growing recursion depths")
	wait := flag.Bool("wait", false, "after the handshakes, wait for a line on stdin")
	wrap := flag.Bool("wrap", false, "TLS over a wrapper of the TCP connection")
	decoy := flag.Bool("decoy", false, "TLS over a wrapper that looks like it leads to a listener's fd")
	flag.Parse()

	pem, err := ioutil.ReadFile(*cafile) // not os.ReadFile: this program also builds with Go 1.15
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatal("no certificate in ", *cafile)
	}
	host, _, err := net.SplitHostPort(*address)
	if err != nil {
		log.Fatal(err)
	}
	config := &tls.Config{RootCAs: roots, ServerName: host}
	dialer := &net.Dialer{Timeout: 30 * time.Second}

	connections := make([]*tls.Conn, *conns)
	locals := make([]string, *conns)
	for i := range connections {
		conn, err := dial(dialer, *address, config, *wrap, *decoy)
		if err != nil {
			log.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(90 * time.Second))
		connections[i], locals[i] = conn, conn.LocalAddr().String()
	}
	emit(map[string]interface{}{"locals": locals})
	if *wait {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			log.Fatal("waiting for stdin: ", err)
		}
	}

	results := make([]result, *conns)
	var all sync.WaitGroup
	for i, conn := range connections {
		all.Add(1)
		go func(i int, conn *tls.Conn) {
			defer all.Done()
			defer conn.Close()
			results[i] = exchange(conn, request(*address, i, *size), o)
		}(i, conn)
	}
	all.Wait()
	emit(map[string]interface{}{"connections": results})
}
