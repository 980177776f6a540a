package scheduler_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/task"
)

var (
	keyA = job.Key{Role: "demo", Env: "dev", Name: "a"}
	keyB = job.Key{Role: "demo", Env: "dev", Name: "b"}
)

// pending returns a PENDING task of version 1 of key that needs cpu
// millicores and 64 MiB, unless opts say otherwise.
func pending(id string, key job.Key, cpu int64, opts ...func(*task.Task)) task.Task {
	t := task.Task{ID: id, Job: key, JobVersion: 1, Attempt: 1, State: task.Pending,
		Resources: job.Resources{CPU: cpu, Memory: 64 << 20}}
	for _, o := range opts {
		o(&t)
	}
	return t
}

// capacity returns a ready node with cpu millicores and 1 GiB free.
func capacity(name string, cpu int64, attrs map[string]string) scheduler.NodeCapacity {
	return scheduler.NodeCapacity{
		Node: node.Node{Name: name, State: node.Ready, Attributes: attrs},
		Free: job.Resources{CPU: cpu, Memory: 1 << 30},
	}
}

func specs(cs ...job.Constraint) map[scheduler.VersionKey]job.Spec {
	return map[scheduler.VersionKey]job.Spec{
		{Job: keyA, Version: 1}: {Key: keyA, Constraints: cs},
		{Job: keyB, Version: 1}: {Key: keyB},
	}
}

var linux = map[string]string{"os": "linux"}

// pinned returns specs whose job A is pinned to node.
func pinned(node string) map[scheduler.VersionKey]job.Spec {
	s := specs()
	a := s[scheduler.VersionKey{Job: keyA, Version: 1}]
	a.Node = node
	s[scheduler.VersionKey{Job: keyA, Version: 1}] = a
	return s
}

func TestPlace(t *testing.T) {
	t.Parallel()
	osLinux := job.Constraint{Attribute: "os", Operator: job.OpEqual, Value: "linux"}
	notEU := job.Constraint{Attribute: "zone", Operator: job.OpNotEqual, Value: "eu"}
	tests := []struct {
		name string
		snap scheduler.Snapshot
		want scheduler.Plan
	}{
		{
			name: "no nodes",
			snap: scheduler.Snapshot{Pending: []task.Task{pending("t1", keyA, 100)}, Specs: specs()},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "no ready node"}},
		},
		{
			name: "a pinned task goes to its node even with less free cpu",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("big", 4000, nil), capacity("mine", 500, nil)},
				Specs:   pinned("mine"),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{{TaskID: "t1", Node: "mine"}}},
		},
		{
			name: "a task pinned to a node that is not ready waits and says so",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("big", 4000, nil)},
				Specs:   pinned("gone"),
			},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "pinned to node gone, which is not ready"}},
		},
		{
			name: "a pinned task waits for room on its node, not elsewhere",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 1000)},
				Nodes:   []scheduler.NodeCapacity{capacity("big", 4000, nil), capacity("mine", 500, nil)},
				Specs:   pinned("mine"),
			},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "not enough free resources (cpu 1000, memory 67108864) on mine"}},
		},
		{
			name: "work that chooses no pool stays off a pool's nodes",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("burst-1", 4000, map[string]string{"pool": "burst"}), capacity("n1", 500, nil)},
				Specs:   specs(),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{{TaskID: "t1", Node: "n1"}}},
		},
		{
			name: "work that chooses a pool by constraint may run there",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("burst-1", 4000, map[string]string{"pool": "burst", "os": "linux"}), capacity("n1", 500, linux)},
				Specs:   specs(osLinux),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{{TaskID: "t1", Node: "burst-1"}}},
		},
		{
			name: "a pool's nodes alone cannot take work that chooses no pool, and it says why",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("burst-1", 4000, map[string]string{"pool": "burst"})},
				Specs:   specs(),
			},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "constraint not met on burst-1 (in pool burst, which the job does not choose)"}},
		},
		{
			name: "nothing pending",
			snap: scheduler.Snapshot{Nodes: []scheduler.NodeCapacity{capacity("n1", 1000, nil)}, Specs: specs()},
			want: scheduler.Plan{},
		},
		{
			name: "the constraint picks the node even with less free cpu",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("big-mac", 4000, map[string]string{"os": "darwin"}), capacity("small", 500, linux)},
				Specs:   specs(osLinux),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{{TaskID: "t1", Node: "small"}}},
		},
		{
			name: "a constraint met nowhere names the constraint and every node",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("n2", 1000, map[string]string{"os": "darwin"}), capacity("n1", 1000, nil)},
				Specs:   specs(osLinux),
			},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "constraint not met on n1 (os = linux), n2 (os = linux)"}},
		},
		{
			name: "the first unmet constraint is named",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("n1", 1000, map[string]string{"os": "linux", "zone": "eu"})},
				Specs:   specs(osLinux, notEU),
			},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "constraint not met on n1 (zone != eu)"}},
		},
		{
			name: "a not-equal constraint holds where the attribute is missing",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("eu-node", 4000, map[string]string{"zone": "eu"}), capacity("bare", 100, nil)},
				Specs:   specs(notEU),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{{TaskID: "t1", Node: "bare"}}},
		},
		{
			name: "not enough cpu anywhere",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 1500)},
				Nodes:   []scheduler.NodeCapacity{capacity("n1", 1000, nil), capacity("n2", 1499, nil)},
				Specs:   specs(),
			},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "not enough free resources (cpu 1500, memory 67108864) on n1, n2"}},
		},
		{
			name: "memory decides when cpu does not",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100, func(t *task.Task) { t.Resources.Memory = 2 << 30 })},
				Nodes: []scheduler.NodeCapacity{
					capacity("most-cpu", 8000, nil),
					{Node: node.Node{Name: "most-mem", State: node.Ready}, Free: job.Resources{CPU: 200, Memory: 4 << 30}},
				},
				Specs: specs(),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{{TaskID: "t1", Node: "most-mem"}}},
		},
		{
			name: "not enough memory anywhere",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100, func(t *task.Task) { t.Resources.Memory = 2 << 30 })},
				Nodes:   []scheduler.NodeCapacity{capacity("n1", 8000, nil)},
				Specs:   specs(),
			},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "not enough free resources (cpu 100, memory 2147483648) on n1"}},
		},
		{
			name: "constraint and resources both reported",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyA, 500)},
				Nodes:   []scheduler.NodeCapacity{capacity("mac", 8000, map[string]string{"os": "darwin"}), capacity("full", 100, linux)},
				Specs:   specs(osLinux),
			},
			want: scheduler.Plan{Unplaced: map[string]string{
				"t1": "constraint not met on mac (os = linux); not enough free resources (cpu 500, memory 67108864) on full",
			}},
		},
		{
			name: "spreads to the node with the most free cpu",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("n1", 500, nil), capacity("n2", 800, nil), capacity("n3", 300, nil)},
				Specs:   specs(),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{{TaskID: "t1", Node: "n2"}}},
		},
		{
			name: "spreads a round over equal nodes, counting what it placed",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100), pending("t2", keyB, 100), pending("t3", keyB, 100), pending("t4", keyB, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("n2", 1000, nil), capacity("n1", 1000, nil)},
				Specs:   specs(),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{
				{TaskID: "t1", Node: "n1"}, {TaskID: "t2", Node: "n2"}, {TaskID: "t3", Node: "n1"}, {TaskID: "t4", Node: "n2"},
			}},
		},
		{
			name: "equal free cpu goes to the node with fewer tasks",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100)},
				Nodes: []scheduler.NodeCapacity{
					{Node: node.Node{Name: "a-busy"}, Free: job.Resources{CPU: 500, Memory: 1 << 30}, Tasks: 3},
					{Node: node.Node{Name: "b-idle"}, Free: job.Resources{CPU: 500, Memory: 1 << 30}, Tasks: 0},
				},
				Specs: specs(),
			},
			want: scheduler.Plan{Placements: []scheduler.Placement{{TaskID: "t1", Node: "b-idle"}}},
		},
		{
			name: "a round fills a node and no further",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100), pending("t2", keyB, 100), pending("t3", keyB, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("n1", 250, nil)},
				Specs:   specs(),
			},
			want: scheduler.Plan{
				Placements: []scheduler.Placement{{TaskID: "t1", Node: "n1"}, {TaskID: "t2", Node: "n1"}},
				Unplaced:   map[string]string{"t3": "not enough free resources (cpu 100, memory 67108864) on n1"},
			},
		},
		{
			name: "snapshot order wins a scarce slot (the store orders by priority, then age)",
			snap: scheduler.Snapshot{
				Pending: []task.Task{
					pending("high", keyB, 100, func(t *task.Task) { t.Priority = 100 }),
					pending("low", keyA, 100, func(t *task.Task) { t.Priority = 1 }),
				},
				Nodes: []scheduler.NodeCapacity{capacity("n1", 100, nil)},
				Specs: specs(),
			},
			want: scheduler.Plan{
				Placements: []scheduler.Placement{{TaskID: "high", Node: "n1"}},
				Unplaced:   map[string]string{"low": "not enough free resources (cpu 100, memory 67108864) on n1"},
			},
		},
		{
			name: "backfill: a task that fits nowhere does not block a smaller one behind it",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("big", keyB, 4000), pending("small", keyB, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("n1", 1000, nil)},
				Specs:   specs(),
			},
			want: scheduler.Plan{
				Placements: []scheduler.Placement{{TaskID: "small", Node: "n1"}},
				Unplaced:   map[string]string{"big": "not enough free resources (cpu 4000, memory 67108864) on n1"},
			},
		},
		{
			name: "backfill past an unmet constraint",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("picky", keyA, 100), pending("easy", keyB, 100)},
				Nodes:   []scheduler.NodeCapacity{capacity("n1", 1000, nil)},
				Specs:   specs(osLinux),
			},
			want: scheduler.Plan{
				Placements: []scheduler.Placement{{TaskID: "easy", Node: "n1"}},
				Unplaced:   map[string]string{"picky": "constraint not met on n1 (os = linux)"},
			},
		},
		{
			name: "a task whose version is unknown waits",
			snap: scheduler.Snapshot{
				Pending: []task.Task{pending("t1", keyB, 100, func(t *task.Task) { t.JobVersion = 7 })},
				Nodes:   []scheduler.NodeCapacity{capacity("n1", 1000, nil)},
				Specs:   specs(),
			},
			want: scheduler.Plan{Unplaced: map[string]string{"t1": "job version not found"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nodesBefore := append([]scheduler.NodeCapacity(nil), tt.snap.Nodes...)
			got := scheduler.Place(tt.snap)
			require.Empty(t, cmp.Diff(tt.want, got, cmpopts.EquateEmpty()))
			require.Empty(t, cmp.Diff(nodesBefore, tt.snap.Nodes), "Place must not change its snapshot")
		})
	}
}
