package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/client"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	addr      string
	output    string
	tokenFile string
}

func (f *clientFlags) register(cmd *cobra.Command, listing bool) {
	cmd.Flags().StringVar(&f.addr, "addr", "http://"+defaultListen, "URL of the drover server")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the API token (default: $DROVER_TOKEN, or the token file the cluster list names for --addr)")
	if listing {
		cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	}
}

func (f *clientFlags) client() (*client.Client, error) {
	c, err := client.New(f.addr, nil)
	if err != nil {
		return nil, err
	}
	tok, err := clientToken(f.addr, f.tokenFile)
	if err != nil {
		return nil, err
	}
	return c.WithToken(tok), nil
}

func (f *clientFlags) json() (bool, error) {
	switch f.output {
	case "table", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("--output %q: must be table or json", f.output)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns. Every cell is cleaned of terminal control
// characters: job names, messages and reasons come from users and agents.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(headers...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = clean(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// clean replaces control characters (C0, DEL, C1) with '?', so text from a
// job cannot move the cursor, change colours or retitle the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// cleanText is [clean] for multi-line text: it keeps newlines and tabs.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}
