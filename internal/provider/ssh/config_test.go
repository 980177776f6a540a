package sshprov

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	newKey(t, key)
	known := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(known, nil, 0o600))
	notKey := filepath.Join(dir, "not_a_key")
	require.NoError(t, os.WriteFile(notKey, []byte("hello"), 0o600))
	valid := func() Config {
		return Config{
			Hosts:          []Host{{Address: "10.0.0.1"}, {Address: "10.0.0.2", Port: 2222}},
			Defaults:       Host{KeyFile: key},
			KnownHostsFile: known,
			Binary:         droverBin,
		}
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // every one must be in the error
	}{
		{"no known hosts file", func(c *Config) { c.KnownHostsFile = "" }, []string{"known_hosts_file: required"}},
		{"missing known hosts file", func(c *Config) { c.KnownHostsFile = filepath.Join(dir, "nope") }, []string{"known_hosts_file: open"}},
		{"no hosts", func(c *Config) { c.Hosts = nil }, []string{"hosts: at least one host is required"}},
		{"port out of range", func(c *Config) { c.Hosts[1].Port = 70000 }, []string{"hosts[1].port: 70000 is out of range"}},
		{"no address", func(c *Config) { c.Hosts[0].Address = "" }, []string{"hosts[0].address: required"}},
		{"bad address", func(c *Config) { c.Hosts[0].Address = "a b" }, []string{`hosts[0].address: "a b" is not a host name`}},
		{"bad name", func(c *Config) { c.Hosts[1].Name = "Web 1" }, []string{`hosts[1].name: "Web 1" must match [a-z0-9_.-]+`}},
		{"same name", func(c *Config) { c.Hosts[1].Name = "10.0.0.1" }, []string{`hosts[1].name: "10.0.0.1" is also the name of hosts[0]`}},
		{"same host", func(c *Config) { c.Hosts[1] = Host{Address: "10.0.0.1", Name: "other"} }, []string{"hosts[1]: root@10.0.0.1:22 is also hosts[0]"}},
		{"no key", func(c *Config) { c.Defaults.KeyFile = "" }, []string{"hosts[0].key_file: required", "hosts[1].key_file: required"}},
		{"unreadable key", func(c *Config) { c.Hosts[1].KeyFile = filepath.Join(dir, "nope") }, []string{"hosts[1].key_file: open"}},
		{"not a key", func(c *Config) { c.Hosts[0].KeyFile = notKey }, []string{"hosts[0].key_file: parse " + notKey}},
		{"missing binary", func(c *Config) { c.Binary = filepath.Join(dir, "nope") }, []string{"binary: stat"}},
		{"negative timeout", func(c *Config) { c.DialTimeout = -1 }, []string{"dialtimeout: -1ns is negative"}},
		{"several at once", func(c *Config) { c.Hosts[0].Port = -1; c.Hosts[1].User = "a b" }, []string{"hosts[0].port: -1 is out of range", `hosts[1].user: "a b" is not a user name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tt.change(&cfg)
			_, err := New(cfg)
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		cfg := valid()
		cfg.Hosts = append(cfg.Hosts, Host{Address: "fe80::1", User: "ops", Name: "v6", Capabilities: map[string]string{"gpu": "1"}})
		cfg.Defaults.Capabilities = map[string]string{"gpu": "0", "dc": "x"}
		p, err := New(cfg)
		require.NoError(t, err)
		got := make([]string, len(p.hosts))
		for i, h := range p.hosts {
			got[i] = strings.Join([]string{h.id, h.Name, h.WorkDir, h.Capabilities["gpu"], h.Capabilities["dc"]}, " ")
		}
		require.Equal(t, []string{
			"root@10.0.0.1:22 10.0.0.1 /var/lib/drover-agent 0 x",
			"root@10.0.0.2:2222 10.0.0.2-2222 /var/lib/drover-agent 0 x",
			"ops@[fe80::1]:22 v6 .drover-agent 1 x",
		}, got)
		require.Equal(t, DefaultStopTimeout, p.cfg.StopTimeout)
		require.Equal(t, DefaultDialTimeout, p.cfg.DialTimeout)
	})
}

func TestLaunchRequestValidated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	newKey(t, key)
	known := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(known, nil, 0o600))
	p, err := New(Config{Hosts: []Host{{Address: "127.0.0.1", Port: 1}}, Defaults: Host{KeyFile: key}, KnownHostsFile: known, Binary: droverBin})
	require.NoError(t, err)
	_, err = p.Launch(t.Context(), requestFor("../etc", "", "", ""))
	require.ErrorContains(t, err, `cluster: "../etc" must match`)
	require.ErrorContains(t, err, "pool: required")
	require.ErrorContains(t, err, "agent.serverurl: required")
	require.ErrorContains(t, err, "agent.token: required")
	require.ErrorContains(t, p.Terminate(t.Context(), "root@127.0.0.1:2/test"), `terminate "root@127.0.0.1:2/test": not a machine of this provider's hosts`)
}
