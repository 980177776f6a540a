package scheduler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/task"
)

// Snapshot is the read-only view placement decides on.
type Snapshot struct {
	// Pending tasks in placement order: priority, then age (FIFO).
	Pending []task.Task
	// Nodes that may take work, with what they have free.
	Nodes []NodeCapacity
	// Specs of the jobs of the pending tasks.
	Specs map[VersionKey]job.Spec
	// Avoid maps a task to a node it should go to only if no other node
	// can take it: where its instance was just lost.
	Avoid map[string]string
	// Prefer maps a task to the node it should go to if it fits there: a
	// service restarted in place.
	Prefer map[string]string
}

// NodeCapacity is a node and what its active tasks leave free.
type NodeCapacity struct {
	Node  node.Node
	Free  job.Resources
	Tasks int
}

// RunKey names one run of a job.
type RunKey struct {
	Job job.Key
	Run int
}

// VersionKey names one job version.
type VersionKey struct {
	Job     job.Key
	Version int
}

// Placement puts one task on one node.
type Placement struct {
	TaskID string
	Node   string
}

// Plan is what placement decided: tasks to assign, and why the others wait.
type Plan struct {
	Placements []Placement
	// Unplaced maps a waiting task to the reason no node took it.
	Unplaced map[string]string
}

// Place decides where pending tasks go. It is a pure function of the
// snapshot: tasks are taken in order, each goes to the feasible node
// (constraints hold, resources fit) with the most free cpu, so work spreads
// over the fleet. A task that fits nowhere waits without blocking the tasks
// behind it (backfill).
func Place(s Snapshot) Plan {
	nodes := make([]NodeCapacity, len(s.Nodes))
	copy(nodes, s.Nodes)
	plan := Plan{Unplaced: map[string]string{}}
	for _, t := range s.Pending {
		spec, ok := s.Specs[VersionKey{t.Job, t.JobVersion}]
		if !ok {
			plan.Unplaced[t.ID] = "job version not found"
			continue
		}
		best := -1
		var unmet, full []string
		for i := range nodes {
			n := &nodes[i]
			if spec.Node != "" && n.Node.Name != spec.Node {
				continue
			}
			if spec.Pool != "" && n.Node.Attributes["pool"] != spec.Pool {
				unmet = append(unmet, fmt.Sprintf("%s (not in pool %s)", n.Node.Name, spec.Pool))
				continue
			}
			// A pool's nodes are for the work that chose the pool (by
			// name or by constraints) or a node: work that constrains
			// nothing stays off them, so it never keeps them busy (and
			// the pool growing) for work it was not launched for.
			if p := n.Node.Attributes["pool"]; p != "" && spec.Pool == "" && spec.Node == "" && len(spec.Constraints) == 0 {
				unmet = append(unmet, fmt.Sprintf("%s (in pool %s, which the job does not choose)", n.Node.Name, p))
				continue
			}
			if c, ok := firstUnmet(spec.Constraints, n.Node.Attributes); !ok {
				unmet = append(unmet, fmt.Sprintf("%s (%s)", n.Node.Name, c))
				continue
			}
			if !t.Resources.Fits(n.Free) {
				full = append(full, n.Node.Name)
				continue
			}
			if best < 0 || better(n, &nodes[best], s.Avoid[t.ID], s.Prefer[t.ID]) {
				best = i
			}
		}
		if best < 0 {
			why := unplacedReason(len(nodes), unmet, full, t.Resources)
			if spec.Node != "" && len(unmet) == 0 && len(full) == 0 {
				why = fmt.Sprintf("pinned to node %s, which is not ready", spec.Node)
			}
			plan.Unplaced[t.ID] = why
			continue
		}
		nodes[best].Free = nodes[best].Free.Sub(t.Resources)
		nodes[best].Tasks++
		plan.Placements = append(plan.Placements, Placement{TaskID: t.ID, Node: nodes[best].Node.Name})
	}
	return plan
}

// better reports whether a is a better home than b: the preferred node,
// not the node to avoid, then more free cpu, then fewer tasks, then name
// order.
func better(a, b *NodeCapacity, avoid, prefer string) bool {
	if (a.Node.Name == prefer) != (b.Node.Name == prefer) {
		return a.Node.Name == prefer
	}
	if (a.Node.Name == avoid) != (b.Node.Name == avoid) {
		return b.Node.Name == avoid
	}
	if a.Free.CPU != b.Free.CPU {
		return a.Free.CPU > b.Free.CPU
	}
	if a.Tasks != b.Tasks {
		return a.Tasks < b.Tasks
	}
	return a.Node.Name < b.Node.Name
}

func firstUnmet(cs []job.Constraint, attrs map[string]string) (string, bool) {
	for _, c := range cs {
		if !c.Matches(attrs) {
			return fmt.Sprintf("%s %s %s", c.Attribute, c.Operator, c.Value), false
		}
	}
	return "", true
}

func unplacedReason(nodes int, unmet, full []string, r job.Resources) string {
	if nodes == 0 {
		return "no ready node"
	}
	var parts []string
	if len(unmet) > 0 {
		sort.Strings(unmet)
		parts = append(parts, "constraint not met on "+strings.Join(unmet, ", "))
	}
	if len(full) > 0 {
		sort.Strings(full)
		parts = append(parts, fmt.Sprintf("not enough free resources (cpu %d, memory %d) on %s", r.CPU, r.Memory, strings.Join(full, ", ")))
	}
	return strings.Join(parts, "; ")
}
