// Command httpsclient POSTs a file's bytes with net/http, over HTTP/1.1 or
// HTTP/2, the way most Go programs make HTTPS calls. It prints one JSON line
// with what it knows about the exchange (its local address, the protocol, the
// response body), so tests compare tlstap's capture with the truth.
//
// With -wait it first prints {"ready": true} and waits for a line on stdin:
// tests release it once tlstap has attached to this executable.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func emit(record map[string]interface{}) {
	line, err := json.Marshal(record)
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(append(line, '\n'))
}

func main() {
	url := flag.String("url", "", "https URL to POST to")
	cafile := flag.String("cafile", "", "PEM certificate to trust")
	bodyFile := flag.String("body", "", "file whose bytes are the request body")
	useHTTP2 := flag.Bool("http2", false, "offer only HTTP/2 (default: HTTP/1.1 only)")
	wait := flag.Bool("wait", false, "print {\"ready\": true}, then wait for a line on stdin")
	flag.Parse()

	pem, err := ioutil.ReadFile(*cafile)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatal("no certificate in ", *cafile)
	}
	body, err := ioutil.ReadFile(*bodyFile)
	if err != nil {
		log.Fatal(err)
	}

	// Dialing ourselves (below TLS) tells us the local address and leaves the
	// TLS, and so the *tls.Conn and ALPN, to net/http.
	var local string
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	transport := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, address)
			if err == nil {
				local = conn.LocalAddr().String()
			}
			return conn, err
		},
		ForceAttemptHTTP2: *useHTTP2,
	}
	if *useHTTP2 {
		transport.TLSClientConfig.NextProtos = []string{"h2"}
	}
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}

	if *wait {
		emit(map[string]interface{}{"ready": true})
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			log.Fatal("waiting for stdin: ", err)
		}
	}
	response, err := client.Post(*url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	received, err := ioutil.ReadAll(response.Body)
	if err != nil {
		log.Fatal(err)
	}
	response.Body.Close()
	transport.CloseIdleConnections()
	emit(map[string]interface{}{"local": local, "proto": response.Proto, "status": response.StatusCode,
		"body": received})
}
