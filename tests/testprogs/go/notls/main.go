// Command notls is a Go program without crypto/tls: tlstap must recognise it
// as Go and leave it alone.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stdout, "no TLS here")
}
