// Command httpsserver is an HTTPS server on net/http, HTTP/1.1 and HTTP/2 (by
// ALPN), listening on a port the OS picks. It prints {"port": N} once
// listening, then one JSON line per request it served (the peer, the protocol,
// the request and response bodies) and one per connection closed, so tests
// compare tlstap's capture with the truth.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
)

var emitLock sync.Mutex

func emit(record map[string]interface{}) {
	line, err := json.Marshal(record)
	if err != nil {
		log.Fatal(err)
	}
	emitLock.Lock()
	defer emitLock.Unlock()
	os.Stdout.Write(append(line, '\n'))
}

// responseBody is distinct per request: a chunk attributed to the wrong
// connection cannot match.
func responseBody(r *http.Request, received []byte, padding int) []byte {
	body := []byte(fmt.Sprintf("%s %s from %s: %d bytes, sha256 %x\n", r.Proto, r.URL.Path, r.RemoteAddr,
		len(received), sha256.Sum256(received)))
	for i := 0; i < padding; i++ {
		body = append(body, byte((i*13+len(r.RemoteAddr))%251))
	}
	return body
}

func main() {
	cert := flag.String("cert", "", "PEM certificate")
	key := flag.String("key", "", "PEM private key")
	padding := flag.Int("response-padding", 0, "extra response body bytes (to span several TLS records)")
	flag.Parse()

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	emit(map[string]interface{}{"port": listener.Addr().(*net.TCPAddr).Port})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received, err := ioutil.ReadAll(r.Body)
		if err != nil {
			emit(map[string]interface{}{"peer": r.RemoteAddr, "error": err.Error()})
			return
		}
		body := responseBody(r, received, *padding)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body))) // never chunked: exact bytes known
		w.Write(body)
		emit(map[string]interface{}{"peer": r.RemoteAddr, "proto": r.Proto, "path": r.URL.Path,
			"received": received, "sent": body})
	})
	// Once a connection is closed the server has read all its peer sent: tests
	// wait for this line before they compare both ends.
	closed := func(conn net.Conn, state http.ConnState) {
		if state == http.StateClosed {
			emit(map[string]interface{}{"closed": conn.RemoteAddr().String()})
		}
	}
	server := &http.Server{Handler: handler, ConnState: closed, ErrorLog: log.New(ioutil.Discard, "", 0)}
	log.Fatal(server.ServeTLS(listener, *cert, *key))
}
