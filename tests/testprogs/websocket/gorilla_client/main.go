// A WebSocket client in Go (gorilla/websocket over crypto/tls), the other
// implementation the bpf test runs against ws_server.py: permessage-deflate
// as gorilla offers it (no context takeover either way), a text, a binary, a
// long text gorilla sends in several frames, a ping, then close 1000 "bye".
// Each echo is checked; prints "ok". It first prints "ready" and waits for a
// line on stdin, so that its first TLS call comes once tlstap has attached.
//
// usage: gorilla_client CAFILE PORT
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	pem, err := os.ReadFile(os.Args[1])
	check(err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	dialer := websocket.Dialer{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		EnableCompression: true,
		WriteBufferSize:   1024, // a message longer than this goes out in several frames
	}
	fmt.Println("ready")
	_, err = bufio.NewReader(os.Stdin).ReadString('\n')
	check(err)
	conn, _, err := dialer.Dial("wss://127.0.0.1:"+os.Args[2]+"/go", nil)
	check(err)

	binary := make([]byte, 1024)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	var long strings.Builder
	for i := 0; long.Len() < 6000; i++ {
		fmt.Fprintf(&long, "%d,", i*i*7919%1000003) // compresses to well over one 1 KiB frame
	}
	messages := []struct {
		kind int
		data []byte
	}{
		{websocket.TextMessage, []byte("hello from go")},
		{websocket.BinaryMessage, binary},
		{websocket.TextMessage, []byte(long.String())},
	}
	for _, m := range messages {
		check(conn.WriteMessage(m.kind, m.data))
		kind, echo, err := conn.ReadMessage()
		check(err)
		if kind != m.kind || !bytes.Equal(echo, m.data) {
			check(fmt.Errorf("echo differs for a %d-byte message", len(m.data)))
		}
	}

	pong := make(chan string, 1)
	conn.SetPongHandler(func(data string) error { pong <- data; return nil })
	check(conn.WriteControl(websocket.PingMessage, []byte("go-ping"), time.Now().Add(10*time.Second)))
	check(conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye")))
	for { // until the server's close: pongs are handled on the way
		if _, _, err := conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, 1000) {
				check(err)
			}
			break
		}
	}
	if got := <-pong; got != "go-ping" {
		check(fmt.Errorf("pong %q", got))
	}
	conn.Close()
	fmt.Println("ok")
}
