package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/server"
)

// Credentials on disk: token files are written 0600 and read back by the
// CLI (DROVER_TOKEN, --token-file, or the cluster list) and by agents.

// readTokenFile reads a token from a file.
func readTokenFile(path string) (secret.String, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return secret.String{}, fmt.Errorf("token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return secret.String{}, fmt.Errorf("token file %s is empty", path)
	}
	return secret.New(t), nil
}

// writeTokenFile writes a token readable by its owner only.
func writeTokenFile(path string, token secret.String) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token.Reveal()+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ensureToken returns the valid token in path, or makes one with mint and
// writes it there.
func ensureToken(ctx context.Context, srv *server.Server, path string, mint func() (secret.String, error)) (secret.String, error) {
	if t, err := readTokenFile(path); err == nil {
		if _, err := srv.CheckToken(ctx, t); err == nil {
			return t, nil
		}
	}
	t, err := mint()
	if err != nil {
		return secret.String{}, err
	}
	return t, writeTokenFile(path, t)
}

// serverCredentials prepares a server's store: the first admin (its
// password returned once, zero if it existed) and the agent join token in
// DATA/agent.token.
func serverCredentials(ctx context.Context, rs *runningServer, data string) (adminPassword, agentToken secret.String, err error) {
	srv := rs.srv
	res, err := srv.Bootstrap(ctx)
	if err != nil {
		return secret.String{}, secret.String{}, err
	}
	agentToken, err = ensureToken(ctx, srv, filepath.Join(data, "agent.token"), func() (secret.String, error) {
		_, t, err := srv.CreateToken(ctx, auth.AgentToken, "", "agents", nil, 0)
		return t, err
	})
	if err != nil {
		return secret.String{}, secret.String{}, err
	}
	rs.startPools(agentToken)
	return res.AdminPassword, agentToken, nil
}

// adminToken makes (or reuses) an admin API token in DATA/admin.token:
// 'drover dev' and 'drover bench' act as the first admin.
func adminToken(ctx context.Context, srv *server.Server, data string) (secret.String, error) {
	return ensureToken(ctx, srv, filepath.Join(data, "admin.token"), func() (secret.String, error) {
		_, t, err := srv.CreateToken(ctx, auth.APIToken, "admin", "drover dev", nil, 0)
		return t, err
	})
}

// clusterEntry is an entry of the CLI's cluster list,
// ~/.config/drover/clusters.json.
type clusterEntry struct {
	Name      string `json:"name"`
	Addr      string `json:"addr"`
	TokenFile string `json:"token_file,omitempty"`
	CA        string `json:"ca,omitempty"`
}

func clustersPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "drover", "clusters.json")
}

func readClusters() ([]clusterEntry, error) {
	p := clustersPath()
	if p == "" {
		return nil, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cs []clusterEntry
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return cs, nil
}

// rememberCluster puts c in the cluster list, replacing an entry of the
// same name.
func rememberCluster(c clusterEntry) error {
	cs, err := readClusters()
	if err != nil {
		return err
	}
	out := []clusterEntry{c}
	for _, x := range cs {
		if x.Name != c.Name {
			out = append(out, x)
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	p := clustersPath()
	if p == "" {
		return errors.New("no user config directory")
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o600)
}

// clientToken finds the CLI's token for the server at addr: --token-file,
// then DROVER_TOKEN, then the cluster list's entry for addr.
func clientToken(addr, tokenFile string) (secret.String, error) {
	if tokenFile != "" {
		return readTokenFile(tokenFile)
	}
	if t := strings.TrimSpace(os.Getenv("DROVER_TOKEN")); t != "" {
		return secret.New(t), nil
	}
	c, ok, err := findCluster(addr)
	if err != nil {
		return secret.String{}, err
	}
	if ok && c.TokenFile != "" {
		return readTokenFile(c.TokenFile)
	}
	return secret.String{}, nil
}

// clientCA finds the CA bundle that verifies the server at addr: --ca,
// then the cluster list's entry for addr ("" means the system's roots).
func clientCA(addr, caFile string) (string, error) {
	if caFile != "" {
		return caFile, nil
	}
	c, ok, err := findCluster(addr)
	if err != nil || !ok {
		return "", err
	}
	return c.CA, nil
}

// findCluster returns the cluster list's entry for the server at addr.
func findCluster(addr string) (clusterEntry, bool, error) {
	cs, err := readClusters()
	if err != nil {
		return clusterEntry{}, false, err
	}
	for _, c := range cs {
		if strings.TrimRight(c.Addr, "/") == strings.TrimRight(addr, "/") {
			return c, true, nil
		}
	}
	return clusterEntry{}, false, nil
}
