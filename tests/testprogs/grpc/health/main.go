// gRPC over TLS with grpc-go (Debian's golang-google-grpc-dev, built in GOPATH
// mode): the standard health service, so no generated code is needed.
//
//	health server CERT KEY   listens on 127.0.0.1:0, prints "listening PORT"
//	health client ADDR SERVICE   waits for a line on stdin, calls Check, prints the status
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
)

func serve(certFile, keyFile string) error {
	creds, err := credentials.NewServerTLSFromFile(certFile, keyFile)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := grpc.NewServer(grpc.Creds(creds))
	checker := health.NewServer()
	checker.SetServingStatus("tlstap", grpc_health_v1.HealthCheckResponse_SERVING)
	grpc_health_v1.RegisterHealthServer(server, checker)
	fmt.Printf("listening %d\n", listener.Addr().(*net.TCPAddr).Port)
	return server.Serve(listener)
}

func check(address, service string) error {
	bufio.NewReader(os.Stdin).ReadString('\n') // "go": tlstap is attached
	creds := credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, address, grpc.WithTransportCredentials(creds), grpc.WithBlock())
	if err != nil {
		return err
	}
	defer conn.Close()
	response, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: service})
	if err != nil {
		return err
	}
	fmt.Println(response.GetStatus())
	return nil
}

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "server":
		err = serve(os.Args[2], os.Args[3])
	case len(os.Args) == 4 && os.Args[1] == "client":
		err = check(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("usage: health server CERT KEY | health client ADDR SERVICE")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
