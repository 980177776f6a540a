package sshprov

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Defaults of [Config] and [Host].
const (
	DefaultPort        = 22
	DefaultUser        = "root"
	DefaultDialTimeout = 10 * time.Second
	// DefaultStopTimeout is how long Terminate lets an agent stop its
	// tasks after SIGTERM before it kills the agent's process group; the
	// same grace 'drover dev' gives its own agents.
	DefaultStopTimeout = 15 * time.Second
	// DefaultRootWorkDir is the work dir of a host whose user is root.
	DefaultRootWorkDir = "/var/lib/drover-agent"
	// DefaultUserWorkDir is the work dir of any other user, relative to
	// the user's home directory.
	DefaultUserWorkDir = ".drover-agent"
)

// Host is one existing machine the provider may start an agent on. Empty
// fields take the value of [Config.Defaults], then the package defaults.
type Host struct {
	// Address is the host name or IP address sshd listens on (required).
	Address string
	// Port is sshd's port; default 22.
	Port int
	// User is the user to log in as; default "root".
	User string
	// KeyFile is an unencrypted private key file (OpenSSH or PEM format)
	// that User's authorized_keys accepts.
	KeyFile string
	// WorkDir holds the drover binary, and per cluster the agent's token,
	// tags, log and sandboxes. Default: /var/lib/drover-agent for root,
	// ~/.drover-agent for other users. A relative path is relative to the
	// user's home directory.
	WorkDir string
	// Name is the node name the host's agent registers as; default: the
	// address, with "-PORT" appended when the port is not 22, lower-cased
	// and with characters outside [a-z0-9_.-] replaced by '-'. It must
	// match [a-z0-9_.-]+.
	Name string
	// Capabilities are merged over the launch request's (the pool's): a
	// host's value wins.
	Capabilities map[string]string
}

// Config configures a [Provider].
type Config struct {
	// Hosts are the machines of the pool; at most one agent per cluster
	// runs on each.
	Hosts []Host
	// Defaults fills the fields a host leaves empty (Address and Name
	// are ignored here).
	Defaults Host
	// KnownHostsFile is an OpenSSH known_hosts file holding every host's
	// key (required: the provider never trusts a key it has not been
	// given). It is read again at every connection, so added hosts need
	// no restart.
	KnownHostsFile string
	// Binary is the local drover binary copied to the hosts when
	// [provider.Agent.Binary] is empty; default: this process's own
	// executable.
	Binary string
	// DialTimeout bounds the TCP connection and the ssh handshake;
	// default [DefaultDialTimeout].
	DialTimeout time.Duration
	// StopTimeout is how long Terminate waits for an agent to stop after
	// SIGTERM; default [DefaultStopTimeout].
	StopTimeout time.Duration
	// Logger gets a line per agent started, binary copied and agent
	// stopped; default: none.
	Logger *slog.Logger
}

// nodeNameRE is what a node name (and a cluster's directory) may be made of.
var nodeNameRE = regexp.MustCompile(`^[a-z0-9_.-]+$`)

// host is a validated [Host] with defaults filled and its key loaded.
type host struct {
	Host
	signer ssh.Signer
	// id is "user@address:port", the part of a machine ID naming the host.
	id string
}

// addr is the host's HOST:PORT.
func (h *host) addr() string { return net.JoinHostPort(h.Address, strconv.Itoa(h.Port)) }

// withDefaults returns cfg with every default filled, and every host
// validated, its key file read. Errors name the field at fault, with its
// index: "hosts[1].port: 70000 is out of range".
func (cfg Config) withDefaults() (Config, []*host, error) {
	var errs []error
	if cfg.KnownHostsFile == "" {
		errs = append(errs, errors.New("known_hosts_file: required (the provider never trusts an unknown host key)"))
	} else if _, err := knownhosts.New(cfg.KnownHostsFile); err != nil {
		errs = append(errs, fmt.Errorf("known_hosts_file: %w", err))
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			errs = append(errs, fmt.Errorf("binary: not given, and this process's executable is unknown: %w", err))
		}
		cfg.Binary = exe
	} else if st, err := os.Stat(cfg.Binary); err != nil {
		errs = append(errs, fmt.Errorf("binary: %w", err))
	} else if !st.Mode().IsRegular() {
		errs = append(errs, fmt.Errorf("binary: %s is not a regular file", cfg.Binary))
	}
	if cfg.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dialtimeout: %s is negative", cfg.DialTimeout))
	} else if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.StopTimeout < 0 {
		errs = append(errs, fmt.Errorf("stoptimeout: %s is negative", cfg.StopTimeout))
	} else if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.Defaults.Port < 0 || cfg.Defaults.Port > 65535 {
		errs = append(errs, fmt.Errorf("defaults.port: %d is out of range", cfg.Defaults.Port))
	}
	if len(cfg.Hosts) == 0 {
		errs = append(errs, errors.New("hosts: at least one host is required"))
	}
	// Keys are read once per file, whichever hosts share it.
	signers := map[string]ssh.Signer{}
	keyErrs := map[string]bool{}
	hosts := make([]*host, 0, len(cfg.Hosts))
	byID, byName := map[string]int{}, map[string]int{}
	for i, in := range cfg.Hosts {
		h := &host{Host: in}
		field := func(name string) string { return fmt.Sprintf("hosts[%d].%s", i, name) }
		h.Capabilities = maps.Clone(in.Capabilities)
		if h.Address == "" {
			errs = append(errs, fmt.Errorf("%s: required", field("address")))
		} else if strings.ContainsAny(h.Address, " \t\r\n/@[]") {
			errs = append(errs, fmt.Errorf("%s: %q is not a host name or IP address", field("address"), h.Address))
		}
		if h.Port == 0 {
			h.Port = cfg.Defaults.Port
		}
		if h.Port == 0 {
			h.Port = DefaultPort
		}
		if h.Port < 0 || h.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s: %d is out of range", field("port"), h.Port))
		}
		if h.User == "" {
			h.User = cfg.Defaults.User
		}
		if h.User == "" {
			h.User = DefaultUser
		}
		if strings.ContainsAny(h.User, " \t\r\n/@:") {
			errs = append(errs, fmt.Errorf("%s: %q is not a user name", field("user"), h.User))
		}
		if h.WorkDir == "" {
			h.WorkDir = cfg.Defaults.WorkDir
		}
		if h.WorkDir == "" {
			h.WorkDir = DefaultUserWorkDir
			if h.User == "root" {
				h.WorkDir = DefaultRootWorkDir
			}
		}
		if strings.ContainsAny(h.WorkDir, "\r\n") {
			errs = append(errs, fmt.Errorf("%s: %q holds a line break", field("work_dir"), h.WorkDir))
		}
		if h.Name == "" {
			h.Name = derivedName(h.Address, h.Port)
		} else if !nodeNameRE.MatchString(h.Name) {
			errs = append(errs, fmt.Errorf("%s: %q must match [a-z0-9_.-]+", field("name"), h.Name))
		}
		if h.KeyFile == "" {
			h.KeyFile = cfg.Defaults.KeyFile
		}
		if h.KeyFile == "" {
			errs = append(errs, fmt.Errorf("%s: required (here or in defaults.key_file)", field("key_file")))
		} else if s, ok := signers[h.KeyFile]; ok {
			h.signer = s
		} else if !keyErrs[h.KeyFile] {
			s, err := readSigner(h.KeyFile)
			if err != nil {
				keyErrs[h.KeyFile] = true
				errs = append(errs, fmt.Errorf("%s: %w", field("key_file"), err))
			} else {
				signers[h.KeyFile] = s
				h.signer = s
			}
		}
		for k := range cfg.Defaults.Capabilities {
			if _, ok := h.Capabilities[k]; !ok {
				if h.Capabilities == nil {
					h.Capabilities = map[string]string{}
				}
				h.Capabilities[k] = cfg.Defaults.Capabilities[k]
			}
		}
		h.id = h.User + "@" + h.addr()
		if j, ok := byID[h.id]; ok && h.Address != "" {
			errs = append(errs, fmt.Errorf("hosts[%d]: %s is also hosts[%d]", i, h.id, j))
		} else {
			byID[h.id] = i
		}
		if j, ok := byName[h.Name]; ok && h.Name != "" {
			errs = append(errs, fmt.Errorf("%s: %q is also the name of hosts[%d]; give one of them another name", field("name"), h.Name, j))
		} else {
			byName[h.Name] = i
		}
		hosts = append(hosts, h)
	}
	return cfg, hosts, errors.Join(errs...)
}

// derivedName is a host's default node name: its address (and port, if
// not 22) made of [a-z0-9_.-] only.
func derivedName(address string, port int) string {
	s := strings.ToLower(address)
	if port != DefaultPort && port != 0 {
		s += "-" + strconv.Itoa(port)
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// readSigner loads an unencrypted private key.
func readSigner(path string) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("%s is protected by a passphrase; give an unencrypted key", path)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return s, nil
}
