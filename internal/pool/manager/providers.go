package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/provider"
	"github.com/drover-dev/drover/internal/provider/ec2"
	"github.com/drover-dev/drover/internal/provider/local"
	sshprov "github.com/drover-dev/drover/internal/provider/ssh"
)

// ProviderFactory makes the provider of a pool from its node spec.
type ProviderFactory func(ctx context.Context, p pool.Pool) (provider.Provider, error)

// localSpec is a local pool's node spec.
type localSpec struct {
	// Env is extra environment for the agents (KEY=VALUE).
	Env []string `json:"env,omitempty"`
	// Binary is the program started as the agent (default: this drover
	// binary): a wrapper, or in tests one that never registers.
	Binary string `json:"binary,omitempty"`
}

// hostSpec is one ssh host as a pool file writes it.
type hostSpec struct {
	Address      string            `json:"address,omitempty"`
	Port         int               `json:"port,omitempty"`
	User         string            `json:"user,omitempty"`
	KeyFile      string            `json:"key_file,omitempty"`
	WorkDir      string            `json:"work_dir,omitempty"`
	Name         string            `json:"name,omitempty"`
	Capabilities map[string]string `json:"capabilities,omitempty"`
}

func (h hostSpec) host() sshprov.Host {
	return sshprov.Host{Address: h.Address, Port: h.Port, User: h.User, KeyFile: h.KeyFile, WorkDir: h.WorkDir,
		Name: h.Name, Capabilities: h.Capabilities}
}

// sshSpec is an ssh pool's node spec.
type sshSpec struct {
	KnownHostsFile string     `json:"known_hosts_file"`
	Defaults       hostSpec   `json:"defaults"`
	Hosts          []hostSpec `json:"hosts"`
}

// ec2Spec is an ec2 pool's node spec.
type ec2Spec struct {
	Region           string            `json:"region,omitempty"`
	InstanceType     string            `json:"instance_type"`
	ImageID          string            `json:"image_id"`
	KeyName          string            `json:"key_name,omitempty"`
	SecurityGroupIDs []string          `json:"security_group_ids,omitempty"`
	SubnetID         string            `json:"subnet_id,omitempty"`
	Spot             bool              `json:"spot,omitempty"`
	SpotMaxPrice     string            `json:"spot_max_price,omitempty"`
	ShutdownBehavior string            `json:"shutdown_behavior,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	UserData         string            `json:"user_data,omitempty"`
	// Endpoint is a custom EC2 endpoint (a compatible cloud, or tests).
	Endpoint string `json:"endpoint,omitempty"`
	// SSHUser and SSHKeyFile are what `drover node ssh` logs in with.
	SSHUser    string `json:"ssh_user,omitempty"`
	SSHKeyFile string `json:"ssh_key_file,omitempty"`
}

// decodeSpec decodes a pool's node spec strictly: an unknown field is an
// error naming it.
func decodeSpec(p pool.Pool, v any) error {
	if len(p.Spec) == 0 || string(p.Spec) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(p.Spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return job.Fieldf("node", "%v", err)
	}
	return nil
}

// Providers returns the factory of drover's providers: local machines
// keep their state under dataDir/machines/POOL.
func Providers(dataDir string) ProviderFactory {
	return func(ctx context.Context, p pool.Pool) (provider.Provider, error) {
		switch p.Provider {
		case pool.ProviderLocal:
			var s localSpec
			if err := decodeSpec(p, &s); err != nil {
				return nil, err
			}
			return local.New(local.Config{Dir: filepath.Join(dataDir, "machines", p.Name), Env: s.Env, Binary: s.Binary})
		case pool.ProviderSSH:
			var s sshSpec
			if err := decodeSpec(p, &s); err != nil {
				return nil, err
			}
			cfg := sshprov.Config{KnownHostsFile: s.KnownHostsFile, Defaults: s.Defaults.host(), DialTimeout: 10 * time.Second}
			for i, h := range s.Hosts {
				if _, ok := h.Capabilities[pool.AttrPool]; ok {
					return nil, job.Fieldf(fmt.Sprintf("node.hosts[%d].capabilities.pool", i), "is set by drover to the pool's name")
				}
				cfg.Hosts = append(cfg.Hosts, h.host())
			}
			prov, err := sshprov.New(cfg)
			if err != nil {
				return nil, job.Fieldf("node", "%v", err)
			}
			return prov, nil
		case pool.ProviderEC2:
			var s ec2Spec
			if err := decodeSpec(p, &s); err != nil {
				return nil, err
			}
			cfg := ec2.Config{Region: s.Region, InstanceType: s.InstanceType, ImageID: s.ImageID, KeyName: s.KeyName,
				SecurityGroupIDs: s.SecurityGroupIDs, SubnetID: s.SubnetID, Spot: s.Spot, SpotMaxPrice: s.SpotMaxPrice,
				ShutdownBehavior: s.ShutdownBehavior, Tags: s.Tags, UserData: s.UserData, Endpoint: s.Endpoint}
			if err := cfg.WithDefaults().Validate(); err != nil {
				return nil, job.Fieldf("node", "%v", err)
			}
			prov, err := ec2.New(ctx, cfg)
			if err != nil {
				return nil, job.Fieldf("node", "%v", err)
			}
			return prov, nil
		}
		return nil, fmt.Errorf("pool %s: no provider %q", p.Name, p.Provider)
	}
}
