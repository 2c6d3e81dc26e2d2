// Go crypto/tls counterparts of tls_pingpong.c and tls_bulk.c, over loopback:
//
//	pingpong-serve CERT KEY            echo 1 KiB messages; prints "port P"
//	pingpong-client PORT ROUND_TRIPS   prints the mean round trip in ns
//	bulk-send CERT KEY BYTES WRITE_SIZE  prints "port P sha256 HEX", then sends
//	bulk-recv PORT BYTES               prints the ns from handshake to last byte
//
// Client and server are separate processes so that a capture can be limited to
// one of them and both can be pinned to one core.
package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

const message = 1024

func die(what string, err error) {
	fmt.Fprintf(os.Stderr, "tls_pingpong_go: %s: %v\n", what, err)
	os.Exit(1)
}

func number(text string) int {
	n, err := strconv.Atoi(text)
	if err != nil {
		die("bad number", err)
	}
	return n
}

// listen prints the port on stdout, then returns the one accepted TLS connection.
func listen(certFile, keyFile, banner string) *tls.Conn {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		die("certificate", err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("listen", err)
	}
	fmt.Printf("port %d%s\n", listener.Addr().(*net.TCPAddr).Port, banner)
	conn, err := listener.Accept()
	if err != nil {
		die("accept", err)
	}
	listener.Close()
	server := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err := server.Handshake(); err != nil {
		die("handshake", err)
	}
	return server
}

func dial(port string) *tls.Conn {
	conn, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		die("dial", err)
	}
	return conn
}

func pingpongServe(certFile, keyFile string) {
	conn := listen(certFile, keyFile, "")
	buf := make([]byte, message)
	for {
		if _, err := io.ReadFull(conn, buf); err != nil {
			return
		}
		if _, err := conn.Write(buf); err != nil {
			die("write", err)
		}
	}
}

func pingpongClient(port string, rounds int) {
	conn := dial(port)
	buf := make([]byte, message)
	for i := range buf {
		buf[i] = 'x'
	}
	start := time.Now()
	for i := 0; i < rounds; i++ {
		if _, err := conn.Write(buf); err != nil {
			die("write", err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			die("read", err)
		}
	}
	elapsed := time.Since(start)
	conn.Close()
	fmt.Printf("%d\n", elapsed.Nanoseconds()/int64(rounds))
}

// makeData is xorshift64*, like tls_bulk.c: deterministic, no period within 256 MiB.
func makeData(size int) []byte {
	data := make([]byte, size+8)
	state := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < size; i += 8 {
		state ^= state >> 12
		state ^= state << 25
		state ^= state >> 27
		binary.LittleEndian.PutUint64(data[i:], state*0x2545f4914f6cdd1d)
	}
	return data[:size]
}

func bulkSend(certFile, keyFile string, size, writeSize int) {
	data := makeData(size)
	conn := listen(certFile, keyFile, fmt.Sprintf(" sha256 %x", sha256.Sum256(data)))
	for sent := 0; sent < size; sent += writeSize {
		end := sent + writeSize
		if end > size {
			end = size
		}
		if _, err := conn.Write(data[sent:end]); err != nil {
			die("write", err)
		}
	}
	conn.Close()
}

func bulkReceive(port string, size int) {
	conn := dial(port)
	buf := make([]byte, 16384)
	start := time.Now()
	for got := 0; got < size; {
		n, err := conn.Read(buf)
		if err != nil {
			die("read: connection ended early", err)
		}
		got += n
	}
	fmt.Printf("%d\n", time.Since(start).Nanoseconds())
}

func main() {
	args := os.Args[1:]
	switch {
	case len(args) == 3 && args[0] == "pingpong-serve":
		pingpongServe(args[1], args[2])
	case len(args) == 3 && args[0] == "pingpong-client":
		pingpongClient(args[1], number(args[2]))
	case len(args) == 5 && args[0] == "bulk-send":
		bulkSend(args[1], args[2], number(args[3]), number(args[4]))
	case len(args) == 3 && args[0] == "bulk-recv":
		bulkReceive(args[1], number(args[2]))
	default:
		fmt.Fprintln(os.Stderr, "usage: see the comment at the top of main.go")
		os.Exit(2)
	}
}
