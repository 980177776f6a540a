package local

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/drover-dev/drover/internal/provider"
)

// machineTags is a machine's tags.json: what the launch request said
// about it, written before its agent starts.
type machineTags struct {
	Node       string            `json:"node"`
	Pool       string            `json:"pool"`
	Cluster    string            `json:"cluster"`
	Intent     string            `json:"intent"`
	LaunchedAt time.Time         `json:"launched_at"`
	Tags       map[string]string `json:"tags"` // the provider.Tag* names
}

// readTags reads dir's tags.json. A missing file is fs.ErrNotExist.
func readTags(dir string) (machineTags, error) {
	var t machineTags
	path := filepath.Join(dir, tagsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}

// machine is the Machine these tags describe, without a State.
func (t machineTags) machine(id string) provider.Machine {
	return provider.Machine{
		ID: id, Node: t.Node, Pool: t.Pool, Cluster: t.Cluster, Intent: t.Intent,
		Address: Address, LaunchedAt: t.LaunchedAt, Tags: maps.Clone(t.Tags),
	}
}

// writeJSONAtomic writes v to path as JSON (0600) by way of a temporary
// file and a rename, so a reader sees the old file or the new one, never
// half of one. It does not fsync: the files it writes describe processes,
// which a power loss ends too; a killed server leaves the page cache
// intact.
func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
