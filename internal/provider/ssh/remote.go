package sshprov

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// conn is an ssh connection to one host.
type conn struct {
	h      *host
	client *ssh.Client
	log    *slog.Logger
}

// dial connects to h and checks its host key against the known_hosts
// file: an unknown key or a changed one is refused with an error that
// says which and names the host.
func (p *Provider) dial(ctx context.Context, h *host) (*conn, error) {
	c, offered, err := p.dialAlgos(ctx, h, nil)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) && len(ke.Want) > 0 && !hasKeyType(ke.Want, offered) {
		// The server offered a key of a type known_hosts has no line
		// for, while it has lines of other types: ask for those types.
		// (x/crypto's knownhosts leaves the choice of algorithms to its
		// caller; this is the small part it does not do.)
		if algos := algorithmsOf(ke.Want); len(algos) > 0 {
			c, offered, err = p.dialAlgos(ctx, h, algos)
		}
	}
	if err != nil {
		return nil, hostKeyError(err, h, offered, p.cfg.KnownHostsFile)
	}
	return &conn{h: h, client: c, log: p.log}, nil
}

// dialAlgos connects with the given host key algorithms (nil: all) and
// returns the host key the server offered, if it got that far.
func (p *Provider) dialAlgos(ctx context.Context, h *host, algos []string) (*ssh.Client, ssh.PublicKey, error) {
	check, err := knownhosts.New(p.cfg.KnownHostsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read known hosts: %w", err)
	}
	var offered ssh.PublicKey
	conf := &ssh.ClientConfig{
		User: h.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(h.signer)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			offered = key
			return check(hostname, remote, key)
		},
		HostKeyAlgorithms: algos,
		Timeout:           p.cfg.DialTimeout,
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", h.addr())
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", h.addr(), err)
	}
	// The handshake has no context of its own: closing the connection
	// ends it when ctx ends or the dial timeout passes.
	stop := context.AfterFunc(dctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, h.addr(), conf)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		return nil, offered, fmt.Errorf("ssh handshake with %s: %w", h.addr(), context.Cause(dctx))
	}
	if err != nil {
		nc.Close()
		return nil, offered, err
	}
	return ssh.NewClient(sc, chans, reqs), offered, nil
}

// hostKeyError turns a refused host key into an error that tells the
// operator what to check; other errors are wrapped as they are.
func hostKeyError(err error, h *host, offered ssh.PublicKey, file string) error {
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	fp := ""
	if offered != nil {
		fp = offered.Type() + " " + ssh.FingerprintSHA256(offered)
	}
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("host %s: its key %s is marked revoked in %s; refusing to connect", h.addr(), fp, file)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return fmt.Errorf("host %s: unknown host key %s, not in %s; check it and add it (ssh-keyscan -p %d %s); refusing to connect",
			h.addr(), fp, file, h.Port, h.Address)
	case errors.As(err, &ke):
		return fmt.Errorf("host %s: host key changed: it offers %s but %s:%d has another; refusing to connect (a reinstalled host, or someone in the middle)",
			h.addr(), fp, ke.Want[0].Filename, ke.Want[0].Line)
	}
	return fmt.Errorf("ssh to %s@%s: %w", h.User, h.addr(), err)
}

// hasKeyType says whether one of keys has the type of key.
func hasKeyType(keys []knownhosts.KnownKey, key ssh.PublicKey) bool {
	if key == nil {
		return true
	}
	for _, k := range keys {
		if k.Key.Type() == key.Type() {
			return true
		}
	}
	return false
}

// algorithmsOf lists the host key algorithms that verify the given keys.
func algorithmsOf(keys []knownhosts.KnownKey) []string {
	var algos []string
	seen := map[string]bool{}
	for _, k := range keys {
		t := k.Key.Type()
		names := []string{t}
		if t == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos
}

// Close closes the connection.
func (c *conn) Close() error { return c.client.Close() }

// run runs script with sh on the host, stdin (may be nil) on its standard
// input, and returns its standard output. A failure carries the script's
// standard error. ctx ending closes the session.
func (c *conn) run(ctx context.Context, step, script string, stdin io.Reader) (string, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return "", fmt.Errorf("host %s: %s: open session: %w", c.h.addr(), step, err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if stdin != nil {
		s.Stdin = stdin
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	// The login shell may be anything; the script is POSIX sh.
	start := time.Now()
	err = s.Run("sh -c " + shq(script))
	c.log.DebugContext(ctx, "remote step", "host", c.h.id, "step", step, "took", time.Since(start), "err", err)
	if ctx.Err() != nil {
		return "", fmt.Errorf("host %s: %s: %w", c.h.addr(), step, ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return "", fmt.Errorf("host %s: %s: %w: %s", c.h.addr(), step, err, msg)
		}
		return "", fmt.Errorf("host %s: %s: %w", c.h.addr(), step, err)
	}
	return stdout.String(), nil
}
