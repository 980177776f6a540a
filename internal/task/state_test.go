package task_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/drover-dev/drover/internal/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// legal is the expected transition table, written out by hand from
// DESIGN.md ("Task life") plus the edges the package documents beyond the
// diagram: a PENDING or ASSIGNED task can be killed, and a STARTING task can
// fail (the command could not start) or be killed. Every pair not listed is
// illegal.
var legal = map[[2]task.State]bool{
	{task.Pending, task.Assigned}: true,
	{task.Pending, task.Killed}:   true,

	{task.Assigned, task.Starting}: true,
	{task.Assigned, task.Killed}:   true,
	{task.Assigned, task.Lost}:     true,

	{task.Starting, task.Running}: true,
	{task.Starting, task.Failed}:  true,
	{task.Starting, task.Killed}:  true,
	{task.Starting, task.Lost}:    true,

	{task.Running, task.Succeeded}: true,
	{task.Running, task.Failed}:    true,
	{task.Running, task.Killed}:    true,
	{task.Running, task.Lost}:      true,
}

func TestStatesListsEveryStateOnce(t *testing.T) {
	t.Parallel()
	want := []task.State{
		task.Pending, task.Assigned, task.Starting, task.Running,
		task.Succeeded, task.Failed, task.Killed, task.Lost,
	}
	require.Empty(t, cmp.Diff(want, task.States))
}

func TestCanTransition(t *testing.T) {
	t.Parallel()
	// Every (from, to) pair, including a state to itself and the unknown
	// state, so a new edge in the table fails here until it is written
	// down above.
	states := append([]task.State{""}, task.States...)
	for _, from := range states {
		for _, to := range states {
			t.Run(fmt.Sprintf("%s→%s", from, to), func(t *testing.T) {
				t.Parallel()
				require.Equal(t, legal[[2]task.State{from, to}], task.CanTransition(from, to))
			})
		}
	}
}

func TestTerminalStatesHaveNoWayOut(t *testing.T) {
	t.Parallel()
	for _, from := range task.States {
		if !from.IsTerminal() {
			continue
		}
		for _, to := range task.States {
			require.False(t, task.CanTransition(from, to), "%s → %s", from, to)
		}
	}
}

func TestIsTerminalAndIsActive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state    task.State
		terminal bool
		active   bool
	}{
		{task.Pending, false, false},
		{task.Assigned, false, true},
		{task.Starting, false, true},
		{task.Running, false, true},
		{task.Succeeded, true, false},
		{task.Failed, true, false},
		{task.Killed, true, false},
		{task.Lost, true, false},
		{"", false, false},
		{"BOGUS", false, false},
	}
	seen := map[task.State]bool{}
	for _, tt := range tests {
		seen[tt.state] = true
		t.Run(string(tt.state), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.terminal, tt.state.IsTerminal(), "IsTerminal")
			require.Equal(t, tt.active, tt.state.IsActive(), "IsActive")
		})
	}
	for _, s := range task.States {
		require.True(t, seen[s], "state %s has no case", s)
	}
}

func TestPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to task.State
		want     []task.State // nil: an error
	}{
		{"one legal step", task.Pending, task.Assigned, []task.State{task.Assigned}},
		{"assigned to succeeded", task.Assigned, task.Succeeded, []task.State{task.Starting, task.Running, task.Succeeded}},
		{"assigned to running", task.Assigned, task.Running, []task.State{task.Starting, task.Running}},
		{"assigned to failed passes starting only", task.Assigned, task.Failed, []task.State{task.Starting, task.Failed}},
		{"assigned to killed is direct", task.Assigned, task.Killed, []task.State{task.Killed}},
		{"assigned to lost is direct", task.Assigned, task.Lost, []task.State{task.Lost}},
		{"starting to succeeded", task.Starting, task.Succeeded, []task.State{task.Running, task.Succeeded}},
		{"pending to succeeded", task.Pending, task.Succeeded, []task.State{task.Assigned, task.Starting, task.Running, task.Succeeded}},
		{"running to failed", task.Running, task.Failed, []task.State{task.Failed}},
		{"backwards", task.Running, task.Starting, nil},
		{"back to pending", task.Assigned, task.Pending, nil},
		{"same state", task.Running, task.Running, nil},
		{"pending to pending", task.Pending, task.Pending, nil},
		{"out of an end state", task.Succeeded, task.Failed, nil},
		{"out of lost", task.Lost, task.Running, nil},
		{"unknown from", "BOGUS", task.Running, nil},
		{"unknown to", task.Assigned, "BOGUS", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := task.Path(tt.from, tt.to)
			if tt.want == nil {
				require.Error(t, err)
				require.ErrorContains(t, err, fmt.Sprintf("from %s to %s", tt.from, tt.to))
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, got))
		})
	}
}

// TestPathStepsAreLegal checks every pair: a path found is a chain of legal
// moves ending at `to`, and a legal move is a path of one step.
func TestPathStepsAreLegal(t *testing.T) {
	t.Parallel()
	for _, from := range task.States {
		for _, to := range task.States {
			path, err := task.Path(from, to)
			if task.CanTransition(from, to) {
				require.NoError(t, err, "%s → %s", from, to)
				require.Equal(t, []task.State{to}, path, "%s → %s", from, to)
			}
			if err != nil {
				continue
			}
			require.NotEmpty(t, path)
			require.Equal(t, to, path[len(path)-1])
			cur := from
			for _, next := range path {
				require.True(t, task.CanTransition(cur, next), "%s → %s: step %s → %s", from, to, cur, next)
				cur = next
			}
		}
	}
}

func TestParseState(t *testing.T) {
	t.Parallel()
	for _, s := range task.States {
		got, err := task.ParseState(string(s))
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	for _, bad := range []string{"", "running", "DONE", " RUNNING"} {
		_, err := task.ParseState(bad)
		require.Error(t, err, "%q", bad)
	}
}
