// Package node holds what drover knows of a machine running an agent: its
// identity, attributes, capacity and liveness state.
package node

import (
	"time"

	"github.com/drover-dev/drover/internal/job"
)

// State is a node's liveness and availability.
type State string

const (
	// Ready: syncing and accepting work. Set by the server on each sync.
	Ready State = "READY"
	// Down: missed syncs for longer than the grace period. Set by the
	// server's liveness check; a later sync makes it Ready again.
	Down State = "DOWN"
	// Draining: takes no new work; running work finishes. Set by a user.
	Draining State = "DRAINING"
)

// Node is one machine (or local process slot) running an agent.
type Node struct {
	Name  string
	State State
	// Drain is the operator's wish that the node take no new work. It
	// outlives a DOWN spell: the node comes back DRAINING.
	Drain bool
	// TokenID is the agent token that registered the node; no other
	// token may sync as it.
	TokenID      string
	Address      string
	Attributes   map[string]string // facts (os, arch, hostname) and --capability pairs
	Capacity     job.Resources
	Version      string
	RegisteredAt time.Time
	LastSeen     time.Time
}
