// gRPC over TLS with grpc-go (Debian's golang-google-grpc-dev, built in GOPATH
// mode): the standard health service, so no generated code is needed.
//
//	health server CERT KEY   listens on 127.0.0.1:0, prints "listening PORT"
//	health client ADDR SERVICE   waits for a line on stdin, calls Check, prints the status
//	health calls ADDR SERVICE    Check(SERVICE), Check("missing") (NOT_FOUND), then
//	                             Watch(SERVICE) to its end; a line each
//	health gzip ADDR SERVICE     Check(SERVICE) with its messages gzip'd (the server
//	                             answers in the coding it was asked in), prints the status
//
// The server flips a watched service to NOT_SERVING right after Watch sent its
// first status and ends the Watch after the second, so a Watch deterministically
// streams two messages and ends with OK.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// flippingHealth is the standard health server whose Watch turns the watched
// service NOT_SERVING once its first status is on the wire, and ends the call
// with OK once the second is: a server stream of exactly two messages.
type flippingHealth struct {
	*health.Server
}

// watchStream counts what the standard Watch sends and ends it through its context.
type watchStream struct {
	grpc_health_v1.Health_WatchServer
	ctx  context.Context
	sent int
	flip func()
	end  context.CancelFunc
}

func (s *watchStream) Context() context.Context { return s.ctx }

func (s *watchStream) Send(m *grpc_health_v1.HealthCheckResponse) error {
	err := s.Health_WatchServer.Send(m)
	s.sent++
	switch s.sent {
	case 1:
		s.flip()
	case 2:
		s.end()
	}
	return err
}

func (h flippingHealth) Watch(request *grpc_health_v1.HealthCheckRequest, stream grpc_health_v1.Health_WatchServer) error {
	ctx, end := context.WithCancel(stream.Context())
	defer end()
	flip := func() {
		h.SetServingStatus(request.GetService(), grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	}
	watched := &watchStream{Health_WatchServer: stream, ctx: ctx, flip: flip, end: end}
	err := h.Server.Watch(request, watched)
	if watched.sent == 2 && stream.Context().Err() == nil {
		return nil // ended by us, not by the client
	}
	return err
}

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
	grpc_health_v1.RegisterHealthServer(server, flippingHealth{checker})
	fmt.Printf("listening %d\n", listener.Addr().(*net.TCPAddr).Port)
	return server.Serve(listener)
}

// dial connects over TLS without verifying the test certificate.
func dial(ctx context.Context, address string) (*grpc.ClientConn, error) {
	creds := credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	return grpc.DialContext(ctx, address, grpc.WithTransportCredentials(creds), grpc.WithBlock())
}

func check(address, service string, options ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := dial(ctx, address)
	if err != nil {
		return err
	}
	defer conn.Close()
	request := &grpc_health_v1.HealthCheckRequest{Service: service}
	response, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, request, options...)
	if err != nil {
		return err
	}
	fmt.Println(response.GetStatus())
	return nil
}

// calls makes a unary call, a failing one and a server-streaming one on one connection.
func calls(address, service string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := dial(ctx, address)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := grpc_health_v1.NewHealthClient(conn)
	response, err := client.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: service})
	if err != nil {
		return err
	}
	fmt.Println(response.GetStatus())
	_, err = client.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "missing"})
	fmt.Println(status.Code(err), status.Convert(err).Message())
	return watch(ctx, client, service)
}

func watch(ctx context.Context, client grpc_health_v1.HealthClient, service string) error {
	stream, err := client.Watch(ctx, &grpc_health_v1.HealthCheckRequest{Service: service})
	if err != nil {
		return err
	}
	for {
		response, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Println(response.GetStatus())
	}
}

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "server":
		err = serve(os.Args[2], os.Args[3])
	case len(os.Args) == 4 && os.Args[1] == "client":
		bufio.NewReader(os.Stdin).ReadString('\n') // "go": tlstap is attached
		err = check(os.Args[2], os.Args[3])
	case len(os.Args) == 4 && os.Args[1] == "gzip":
		err = check(os.Args[2], os.Args[3], grpc.UseCompressor(gzip.Name))
	case len(os.Args) == 4 && os.Args[1] == "calls":
		err = calls(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("usage: health server CERT KEY | health client|calls|gzip ADDR SERVICE")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
