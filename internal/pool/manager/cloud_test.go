package manager_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/drover-dev/drover/internal/provider"
)

// cloud is an in-memory [provider.Provider]. It stands in for a cloud so
// the manager's decisions can be driven tick by tick: a test sees every
// launch request and termination, and makes the things a real cloud does
// on its own happen when it wants them (a machine dies, vanishes, or was
// launched by a server that crashed before it recorded the launch). The
// real providers are tested in their own packages, and end to end.
type cloud struct {
	mu         sync.Mutex
	seq        int
	machines   map[string]provider.Machine // by provider ID
	order      []string                    // provider IDs, oldest first
	launches   []provider.LaunchRequest
	terminated []string
	// launchErr, when set, is what every Launch returns.
	launchErr error
}

var _ provider.Provider = (*cloud)(nil)

func newCloud() *cloud { return &cloud{machines: map[string]provider.Machine{}} }

// Launch starts a machine in state running; a request repeated with the
// same Intent answers the machine it started, as the interface asks.
func (c *cloud) Launch(_ context.Context, req provider.LaunchRequest) (provider.Machine, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.launches = append(c.launches, req)
	if c.launchErr != nil {
		return provider.Machine{}, c.launchErr
	}
	for _, m := range c.machines {
		if m.Intent == req.Intent {
			return m, nil
		}
	}
	c.seq++
	m := provider.Machine{
		ID: fmt.Sprintf("i-%04d", c.seq), Node: req.Node, Pool: req.Pool, Cluster: req.Cluster, Intent: req.Intent,
		State: provider.Running, Address: fmt.Sprintf("10.0.0.%d", c.seq),
	}
	c.add(m)
	return m, nil
}

// Terminate removes the machine; one already gone is not an error.
func (c *cloud) Terminate(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.terminated = append(c.terminated, id)
	delete(c.machines, id)
	return nil
}

// List lists the pool's machines of cluster, oldest first.
func (c *cloud) List(_ context.Context, pool, cluster string) ([]provider.Machine, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []provider.Machine
	for _, id := range c.order {
		if m, ok := c.machines[id]; ok && m.Pool == pool && m.Cluster == cluster {
			out = append(out, m)
		}
	}
	return out, nil
}

func (c *cloud) add(m provider.Machine) {
	c.machines[m.ID] = m
	c.order = append(c.order, m.ID)
}

// plant puts a machine in the cloud that this server did not launch (or
// launched and crashed before it recorded it).
func (c *cloud) plant(m provider.Machine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(m)
}

// die makes a machine's agent end on its own: the cloud still lists it,
// as terminated, until someone terminates it.
func (c *cloud) die(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.machines[id]
	m.State = provider.Terminated
	c.machines[id] = m
}

// lose makes a machine vanish from the cloud's list without drover asking
// (deleted from the cloud console).
func (c *cloud) lose(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.machines, id)
}

// failLaunches makes every later Launch fail with err (nil: succeed).
func (c *cloud) failLaunches(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.launchErr = err
}

// requests returns every launch request so far.
func (c *cloud) requests() []provider.LaunchRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.launches)
}

// terminations returns the provider IDs Terminate was called with.
func (c *cloud) terminations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.terminated)
}

// running returns the IDs of the machines the cloud has, oldest first.
func (c *cloud) running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range c.order {
		if _, ok := c.machines[id]; ok {
			out = append(out, id)
		}
	}
	return out
}
