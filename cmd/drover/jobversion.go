package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/jobspec"
)

// diffContext is how many unchanged lines 'job diff' shows around a change.
const diffContext = 3

func newJobInspectCmd() *cobra.Command {
	var f clientFlags
	var version int
	cmd := &cobra.Command{
		Use:   "inspect KEY",
		Short: "Show the resolved spec of a job version: exactly what runs",
		Long: `Show the spec a job version runs, with every default filled in, as a YAML job
document (-o json: the version as the API answers it). Without --version, the
job's current version. The document is a job file: 'drover job run' takes it
as it is.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := specOutput(f.output)
			if err != nil {
				return err
			}
			if version < 0 {
				return fmt.Errorf("--version %d: versions are numbered from 1", version)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			v, err := jobVersion(cmd.Context(), c, args[0], version)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			if v.Spec == nil {
				return fmt.Errorf("job %s version %d: the server answered no spec", args[0], v.Version)
			}
			doc, err := specYAML(*v.Spec)
			if err != nil {
				return err
			}
			// A comment, so the output stays a job file.
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "# %s version %d, submitted %s\n%s",
				clean(v.Job), v.Version, v.CreatedAt.UTC().Format(time.RFC3339), doc)
			return err
		},
	}
	f.register(cmd, false)
	cmd.Flags().IntVar(&version, "version", 0, "version to show (default: the job's current version)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

func newJobDiffCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "diff KEY FILE",
		Short: "Show what submitting a job file would change in a job",
		Long: `Compare the job KEY in a job file ('-' reads standard input) with the job's
current version and print a unified diff: '--- KEY version N', '+++ FILE'. Both
sides are resolved the same way, every default filled in, as 'drover job
inspect' shows them, so comments, field order and defaults written out do not
count as changes. When nothing would change, it says "no changes". A job that
does not exist yet is compared with nothing: every line is new.

The file is checked as 'drover job run' checks it; a file with several jobs
is compared by the job KEY in it.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, file := args[0], args[1]
			data, err := readInput(cmd, file)
			if err != nil {
				return err
			}
			specs, err := jobspec.Parse(data)
			if err != nil {
				return fileError(file, err)
			}
			var keys []string
			var next *api.JobSpec
			for _, s := range specs {
				if s.Key.String() == key {
					doc := jobspec.Format(s)
					next = &doc
				}
				keys = append(keys, s.Key.String())
			}
			if next == nil {
				return fmt.Errorf("%s holds job %s, not %s", file, strings.Join(keys, ", "), key)
			}
			// The server's side came as JSON: the file's takes the same
			// path, so that equal specs are equal documents by
			// construction.
			if err := viaJSON(next); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			from := key + " (no such job)"
			cur, err := jobVersion(cmd.Context(), c, key, 0)
			switch {
			case client.IsNotFound(err):
				cur.Spec = nil
			case err != nil:
				return err
			case cur.Spec == nil:
				return fmt.Errorf("job %s version %d: the server answered no spec", key, cur.Version)
			default:
				from = fmt.Sprintf("%s version %d", key, cur.Version)
			}
			return writeSpecDiff(cmd.OutOrStdout(), from, cur.Spec, file, *next)
		},
	}
	f.register(cmd, false)
	return cmd
}

// specOutput reads inspect's -o: false for yaml, true for json.
func specOutput(o string) (bool, error) {
	switch o {
	case "yaml", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("--output %q: must be yaml or json", o)
}

// jobVersion fetches one version of a job with its spec; 0 means the
// job's current version.
func jobVersion(ctx context.Context, c *client.Client, key string, version int) (api.JobVersion, error) {
	if version == 0 {
		j, err := c.GetJob(ctx, key)
		if err != nil {
			return api.JobVersion{}, err
		}
		version = j.Version
	}
	return c.GetJobVersion(ctx, key, version)
}

// viaJSON replaces doc with what it reads back as after a trip through
// JSON, the way the API sends it.
func viaJSON(doc *api.JobSpec) error {
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	*doc = api.JobSpec{}
	return json.Unmarshal(data, doc)
}

// specYAML renders a job document as YAML. yaml.Marshal indents by 4 and
// then writes, for some strings, block scalars inside lists that it cannot
// read back (yaml/go-yaml#399); an indent of 2 avoids that. The encoder
// escapes control characters in strings ("\e", "\N"), so a spec cannot
// drive the terminal it is shown on.
func specYAML(doc api.JobSpec) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("render job %s as YAML: %w", doc.Job, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render job %s as YAML: %w", doc.Job, err)
	}
	return b.Bytes(), nil
}

// writeSpecDiff writes a unified diff from the document from (nil: none)
// to the document to, each side named, or a line saying they are the same.
func writeSpecDiff(w io.Writer, fromName string, from *api.JobSpec, toName string, to api.JobSpec) error {
	var a []byte
	if from != nil {
		var err error
		if a, err = specYAML(*from); err != nil {
			return err
		}
	}
	b, err := specYAML(to)
	if err != nil {
		return err
	}
	if bytes.Equal(a, b) {
		_, err := fmt.Fprintf(w, "no changes: %s matches %s\n", clean(toName), clean(fromName))
		return err
	}
	return difflib.WriteUnifiedDiff(w, difflib.UnifiedDiff{
		A: lines(a), B: lines(b), FromFile: clean(fromName), ToFile: clean(toName), Context: diffContext,
	})
}

// lines splits text into lines that keep their "\n". Unlike
// difflib.SplitLines, it adds no empty line after the last one, and none
// at all for empty text.
func lines(text []byte) []string {
	if len(text) == 0 {
		return nil
	}
	out := strings.SplitAfter(string(text), "\n")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}
