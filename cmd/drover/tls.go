package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Transport security: 'drover server' and 'drover dev' serve HTTPS with
// --tls-cert and --tls-key, and refuse plain HTTP on any address but
// loopback unless --insecure-http says a proxy in front terminates TLS.
// Clients verify the server with the system's roots, or with --ca.

// tlsOpts are a server's TLS flags.
type tlsOpts struct {
	cert, key string
	// insecureHTTP allows plain HTTP on a non-loopback address.
	insecureHTTP bool
}

func (o *tlsOpts) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.cert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
	cmd.Flags().StringVar(&o.key, "tls-key", "", "PEM private key of --tls-cert")
	cmd.Flags().BoolVar(&o.insecureHTTP, "insecure-http", false,
		"allow plain HTTP on a non-loopback --listen address (only behind a proxy that terminates TLS): tokens and passwords cross the network in clear")
}

// load returns the server's TLS settings, or nil for plain HTTP.
func (o tlsOpts) load() (*tls.Config, error) {
	switch {
	case o.cert == "" && o.key == "":
		return nil, nil
	case o.cert == "" || o.key == "":
		return nil, fmt.Errorf("--tls-cert and --tls-key go together: give both or neither")
	}
	pair, err := tls.LoadX509KeyPair(o.cert, o.key)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", o.cert, o.key, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// localCA is the file local clients of the server ('drover dev's agents,
// its demo, the CLI through the cluster list) trust: the served
// certificate itself, so a self-signed one works without a CA. Empty
// without TLS.
func (o tlsOpts) localCA() (string, error) {
	if o.cert == "" {
		return "", nil
	}
	return filepath.Abs(o.cert)
}

// checkPlainHTTP refuses to serve plain HTTP on an address other hosts can
// reach, where tokens and passwords would cross the network in clear,
// unless insecure is set; then it warns. listen is the address as the
// user wrote it, addr the one listened on.
func checkPlainHTTP(listen string, addr net.Addr, withTLS, insecure bool, logger *slog.Logger) error {
	if withTLS || isLoopback(addr) {
		return nil
	}
	if !insecure {
		return fmt.Errorf("refusing to serve plain HTTP on %s, which is not a loopback address: tokens and passwords would cross the network in clear. "+
			"Give --tls-cert and --tls-key, listen on 127.0.0.1, or give --insecure-http if a proxy in front terminates TLS", listen)
	}
	logger.Warn("serving plain HTTP on a non-loopback address (--insecure-http): tokens and passwords cross the network in clear unless a proxy in front terminates TLS",
		"listen", listen)
	return nil
}

// isLoopback reports whether a listener's address is reachable from this
// host only: 127.0.0.0/8 or ::1. An unspecified address (0.0.0.0, ::)
// is every interface, so it is not.
func isLoopback(addr net.Addr) bool {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return false
		}
		if host == "localhost" {
			return true
		}
		ip = net.ParseIP(host)
	}
	return ip != nil && ip.IsLoopback()
}

// serverURL is the URL clients reach the server at: the host of --listen
// when it is a name (the name a certificate is likely to carry), else the
// address listened on; with the port actually taken.
func serverURL(listen string, addr net.Addr, withTLS bool) string {
	scheme := "http"
	if withTLS {
		scheme = "https"
	}
	host, _, err := net.SplitHostPort(listen)
	_, port, perr := net.SplitHostPort(addr.String())
	if err == nil && perr == nil && host != "" && net.ParseIP(host) == nil {
		return scheme + "://" + net.JoinHostPort(host, port)
	}
	return scheme + "://" + addr.String()
}
