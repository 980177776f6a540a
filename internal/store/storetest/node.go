package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/store"
)

// nodeCases cover NodeReader and NodeWriter.
func nodeCases() []testCase {
	return []testCase{
		{"PutNodeInsertsThenUpdates", testPutNode},
		{"AttributesRoundTrip", testNodeAttributes},
		{"GetNodeMissing", testGetNodeMissing},
		{"ListNodesOrderedByName", testListNodes},
	}
}

func putNode(t *testing.T, s store.Store, n node.Node) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutNode(ctx, n) })
}

func getNode(t *testing.T, s store.Store, name string) node.Node {
	t.Helper()
	var got node.Node
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetNode(ctx, name)
		return err
	})
	return got
}

func listNodes(t *testing.T, s store.Store) []node.Node {
	t.Helper()
	var got []node.Node
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.ListNodes(ctx)
		return err
	})
	return got
}

func testPutNode(t *testing.T, s store.Store) {
	first := NewNode(func(n *node.Node) {
		n.RegisteredAt = T0.In(time.FixedZone("PST", -8*60*60))
	})
	putNode(t, s, first)
	got := getNode(t, s, first.Name)
	requireEqual(t, first, got)
	requireUTC(t, "node", &got.RegisteredAt, &got.LastSeen)

	// A later PutNode (a sync, a drain, a restarted agent) replaces
	// everything but the registration time, which stays the first one.
	second := NewNode(func(n *node.Node) {
		n.Name = first.Name
		n.State = node.Draining
		n.Drain = true
		n.Address = "10.0.0.8:7070"
		n.Attributes = map[string]string{"os": "linux", "gpu": "a100"}
		n.Capacity = job.Resources{CPU: 16000, Memory: 64 << 30}
		n.Version = "v0.2.0"
		n.RegisteredAt = T0.Add(time.Hour)
		n.LastSeen = T0.Add(time.Hour + time.Nanosecond)
	})
	putNode(t, s, second)
	want := second
	want.RegisteredAt = first.RegisteredAt
	requireEqual(t, want, getNode(t, s, first.Name))
	requireEqual(t, []node.Node{want}, listNodes(t, s), "an updated node is still one node")
}

func testNodeAttributes(t *testing.T, s store.Store) {
	for name, attrs := range map[string]map[string]string{
		"many": {
			"os":             "linux",
			"drover.io/zone": "eu-1b",
			"empty":          "",
			"unicode":        "zürich ☃",
			"quote":          `"x" 'y' \z`,
			"with space":     "a b",
		},
		"one": {"arch": "arm64"},
	} {
		n := NewNode(func(n *node.Node) { n.Attributes = attrs })
		putNode(t, s, n)
		requireEqual(t, attrs, getNode(t, s, n.Name).Attributes, name)
	}

	// A node with no attributes reads back with none (nil or empty).
	for name, attrs := range map[string]map[string]string{"nil": nil, "empty": {}} {
		n := NewNode(func(n *node.Node) { n.Attributes = attrs })
		putNode(t, s, n)
		require.Empty(t, getNode(t, s, n.Name).Attributes, name)
	}
}

func testGetNodeMissing(t *testing.T, s store.Store) {
	requireNotFound(t, s, "node on an empty store", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetNode(ctx, "node-x")
		return err
	})
	putNode(t, s, NewNode(func(n *node.Node) { n.Name = "node-y" }))
	requireNotFound(t, s, "other node", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetNode(ctx, "node-x")
		return err
	})
}

func testListNodes(t *testing.T, s store.Store) {
	require.Empty(t, listNodes(t, s), "nodes of an empty store")
	for _, name := range []string{"web-2", "db-1", "web-10", "a", "web-1"} {
		putNode(t, s, NewNode(func(n *node.Node) { n.Name = name }))
	}
	requireEqual(t, []string{"a", "db-1", "web-1", "web-10", "web-2"}, nodeNames(listNodes(t, s)))
}
