// Package provider is how drover gets machines for its pools: a small
// interface (launch, terminate, list) that each provider implements — local
// processes, existing hosts over ssh, EC2 instances. The pool manager owns
// the decisions (how many, which to remove) and the records; a provider
// only does what it is told and reports what exists.
//
// Every machine a provider launches carries the tags of [LaunchRequest]
// (pool, cluster, intent, node name) in the provider's own terms (EC2 tags,
// a file beside the process), so that List finds every machine drover
// started, even one whose launch the server never recorded because it
// crashed mid-call. That is what makes the reconcile loop leak-free.
package provider

import (
	"context"
	"errors"
	"sort"
	"time"
)

// Tag names every provider attaches to its machines.
const (
	TagPool    = "drover:pool"
	TagCluster = "drover:cluster"
	TagIntent  = "drover:intent" // the launch intent recorded before Launch
	TagNode    = "drover:node"   // the node name the agent registers as
)

// State is a machine's state as its provider sees it.
type State string

const (
	Pending     State = "pending"     // launched, not yet running
	Running     State = "running"     // running (its agent may not have registered yet)
	Terminating State = "terminating" // asked to stop
	Terminated  State = "terminated"  // gone; List may still report it for a while
)

// Agent is what a launched machine must run: `drover agent` with these
// settings. Providers turn it into a command line (local, ssh) or user data
// (ec2) with [Agent.Args].
type Agent struct {
	// Binary is the drover binary on this machine (local and ssh copy or
	// run it); ec2 ignores it and uses DownloadURL.
	Binary string
	// DownloadURL is where a fresh machine fetches the drover binary
	// (ec2 user data); empty means the image already has it at
	// /usr/local/bin/drover.
	DownloadURL string
	ServerURL   string
	// Token is the agent (join) token; a provider passes it in a file,
	// never on a command line (other users can read /proc/PID/cmdline).
	Token string
	// CACert is a PEM bundle that verifies an https ServerURL; may be empty.
	CACert []byte
	// Capabilities become the node's attributes (--capability K=V).
	Capabilities map[string]string
}

// LaunchRequest asks for one machine.
type LaunchRequest struct {
	Pool    string
	Cluster string
	// Intent is the ID of the launch record the pool manager stored
	// before calling Launch. Providers tag the machine with it and use it
	// as an idempotency key where the provider has one (EC2 ClientToken):
	// a Launch repeated with the same Intent must not start a second
	// machine.
	Intent string
	// Node is the name the machine's agent registers as.
	Node  string
	Agent Agent
}

// Machine is one machine as its provider reports it.
type Machine struct {
	ID      string // the provider's ID: a pid-based ID, host name, instance ID
	Node    string // TagNode
	Pool    string // TagPool
	Cluster string // TagCluster
	Intent  string // TagIntent
	State   State
	// Address is where the machine is reachable (host name or IP), if known.
	Address    string
	LaunchedAt time.Time
	Tags       map[string]string
}

// Provider launches, terminates and lists machines.
type Provider interface {
	// Launch starts one machine whose agent joins the server. It returns
	// once the provider has accepted the request (the agent registers
	// later). An error wrapping [ErrCapacity] means the provider has no
	// room now (a pool backs off); other errors are reported as they are.
	Launch(ctx context.Context, req LaunchRequest) (Machine, error)
	// Terminate stops a machine and its agent. Terminating a machine that
	// is already gone is not an error.
	Terminate(ctx context.Context, id string) error
	// List returns every machine of the pool in this cluster that is not
	// terminated, as the provider sees it (not from drover's records).
	List(ctx context.Context, pool, cluster string) ([]Machine, error)
}

// ErrCapacity says a provider cannot launch now for lack of capacity (EC2
// InsufficientInstanceCapacity, no free host).
var ErrCapacity = errors.New("provider has no capacity")

// Args is the `drover agent` command line (without the binary) for a
// machine whose agent registers as node, keeps its sandboxes under
// dataDir, and reads its token (and CA bundle, if any) from the files a
// provider wrote there. Capabilities come in sorted order so the line is
// the same every time.
func (a Agent) Args(node, dataDir, tokenFile, caFile string) []string {
	args := []string{"agent", "--server", a.ServerURL, "--name", node, "--data", dataDir, "--token-file", tokenFile}
	if caFile != "" {
		args = append(args, "--ca", caFile)
	}
	keys := make([]string, 0, len(a.Capabilities))
	for k := range a.Capabilities {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--capability", k+"="+a.Capabilities[k])
	}
	return args
}
