package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/client"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	addr      string
	output    string
	tokenFile string
	ca        string
}

func (f *clientFlags) register(cmd *cobra.Command, listing bool) {
	cmd.Flags().StringVar(&f.addr, "addr", "http://"+defaultListen, "URL of the drover server")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the API token (default: $DROVER_TOKEN, or the token file the cluster list names for --addr)")
	cmd.Flags().StringVar(&f.ca, "ca", "", "PEM CA bundle that verifies an https server (default: the one the cluster list names for --addr, else the system's roots)")
	if listing {
		cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	}
}

func (f *clientFlags) client() (*client.Client, error) {
	ca, err := clientCA(f.addr, f.ca)
	if err != nil {
		return nil, err
	}
	tlsConf, err := client.TLSConfig(ca)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	c, err := client.New(f.addr, client.NewHTTPClient(tlsConf))
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

// cleanWriter writes through [cleanText] what is written to it: task output
// streamed to a terminal. A UTF-8 sequence cut by a write's end is held
// until the next write completes it, so cleaning never breaks a character
// in two; Flush writes what is held.
type cleanWriter struct {
	w    io.Writer
	held []byte
}

func (c *cleanWriter) Write(p []byte) (int, error) {
	buf := append(c.held, p...)
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	c.held = append([]byte(nil), buf[cut:]...)
	if _, err := io.WriteString(c.w, cleanText(string(buf[:cut]))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a held incomplete sequence, cleaned.
func (c *cleanWriter) Flush() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := io.WriteString(c.w, cleanText(string(c.held)))
	c.held = nil
	return err
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

// listCmd builds a listing command taking args: it fetches the items with
// fetch and prints them as JSON (-o json) or as the table render writes.
// The caller may add flags to the returned command before it runs.
func listCmd[T any](use, short string, args cobra.PositionalArgs, fetch func(context.Context, *client.Client, []string) ([]T, error), render func(io.Writer, []T) error) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			items, err := fetch(cmd.Context(), c, args)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), items)
			}
			return render(cmd.OutOrStdout(), items)
		},
	}
	f.register(cmd, true)
	return cmd
}

// noArgs adapts a client method that takes only a context to listCmd.
func noArgs[T any](list func(*client.Client, context.Context) ([]T, error)) func(context.Context, *client.Client, []string) ([]T, error) {
	return func(ctx context.Context, c *client.Client, _ []string) ([]T, error) { return list(c, ctx) }
}

// readInput reads the file a command names, or its standard input for "-".
func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	return os.ReadFile(name)
}
