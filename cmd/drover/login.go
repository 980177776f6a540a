package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/secret"
)

func newLoginCmd() *cobra.Command {
	var f clientFlags
	var name string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in with a password; later commands to --addr use the token it gives",
		Long: `Log in to the server at --addr as --user with a password. The API token the
server answers is written to a file only you can read (in drover's config
directory, tokens/CLUSTER.token) and remembered in the cluster list for
--addr, with --ca if given: later commands to that address need neither a
token nor --ca. $DROVER_TOKEN and --token-file still come first.

The password is read from standard input, one line; it is never a flag,
since every local user can read a command line. When standard input is a
terminal, drover asks for it and turns echo off while you type; otherwise
it reads the first line, so a script can run
'drover login --user ci < password-file'.

Failed logins are limited per user and per address, and recorded in the
audit trail ('drover events --audit').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return errors.New("--user: give the user to log in as")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			// A token from the environment plays no part: an old or revoked
			// one would only get the login refused.
			c = c.WithToken(secret.String{})
			pw, err := readPassword(cmd, fmt.Sprintf("Password for %s at %s: ", name, f.addr), false)
			if err != nil {
				return err
			}
			tok, err := c.Login(cmd.Context(), name, pw, ttl)
			if err != nil {
				return err
			}
			path, err := rememberLogin(f.addr, f.ca, secret.New(tok.Secret))
			if err != nil {
				return err
			}
			expires := "never expires"
			if tok.ExpiresAt != nil {
				expires = "expires " + tok.ExpiresAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s: token %s (%s) saved in %s\n",
				clean(f.addr), clean(tok.Owner), tok.ID, expires, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.addr, "addr", "http://"+defaultListen, "URL of the drover server")
	cmd.Flags().StringVar(&f.ca, "ca", "", "PEM CA bundle that verifies an https server, remembered for --addr (default: the system's roots)")
	cmd.Flags().StringVar(&name, "user", currentUser(), "user to log in as")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the token lasts (default: the server's, 24h)")
	return cmd
}

// currentUser is the OS user's name, the default of login --user.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

var clusterNameUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// rememberLogin writes a token from a login to CONFIG/drover/tokens (mode
// 0600) and points the cluster list's entry for addr at it, keeping the
// entry's name and CA unless caFile is given. It returns the token file.
func rememberLogin(addr, caFile string, token secret.String) (string, error) {
	list := clustersPath()
	if list == "" {
		return "", errors.New("no user config directory to keep the token in ($XDG_CONFIG_HOME or $HOME)")
	}
	entry, ok, err := findCluster(addr)
	if err != nil {
		return "", err
	}
	if !ok {
		host := strings.TrimPrefix(strings.TrimPrefix(strings.TrimRight(addr, "/"), "https://"), "http://")
		entry = clusterEntry{Name: clusterNameUnsafe.ReplaceAllString(host, "_"), Addr: strings.TrimRight(addr, "/")}
	}
	if caFile != "" {
		abs, err := filepath.Abs(caFile)
		if err != nil {
			return "", err
		}
		entry.CA = abs
	}
	entry.TokenFile = filepath.Join(filepath.Dir(list), "tokens", entry.Name+".token")
	if err := writeTokenFile(entry.TokenFile, token); err != nil {
		return "", fmt.Errorf("save the token: %w", err)
	}
	if err := rememberCluster(entry); err != nil {
		return "", fmt.Errorf("remember the cluster: %w", err)
	}
	return entry.TokenFile, nil
}

func newWhoamiCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show whom the CLI's token acts as, and what it may do",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			me, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), me)
			}
			return printWhoAmI(cmd.OutOrStdout(), me)
		},
	}
	f.register(cmd, true)
	return cmd
}

func printWhoAmI(w io.Writer, me api.WhoAmI) error {
	who := me.Kind + " " + me.Name
	if me.TokenID != "" {
		who += " (token " + me.TokenID + ")"
	}
	if _, err := fmt.Fprintln(w, clean(who)); err != nil {
		return err
	}
	perms := "none"
	if len(me.Permissions) > 0 {
		perms = strings.Join(me.Permissions, " ")
	}
	_, err := fmt.Fprintln(w, "permissions: "+clean(perms))
	return err
}

// maxPasswordLine bounds what is read as a password.
const maxPasswordLine = 4 << 10

// readPassword reads a password from standard input: from a terminal,
// after prompt on stderr, with echo off (and twice when confirm is set);
// from anything else, its first line, without a prompt.
func readPassword(cmd *cobra.Command, prompt string, confirm bool) (secret.String, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok {
		if state, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			return readPasswordTerminal(cmd.Context(), f, cmd.ErrOrStderr(), state, prompt, confirm)
		}
	}
	line, err := readLine(bufio.NewReader(io.LimitReader(in, maxPasswordLine)))
	if err != nil {
		return secret.String{}, fmt.Errorf("read the password from standard input: %w", err)
	}
	if line == "" {
		return secret.String{}, errors.New("read the password from standard input: the first line is empty")
	}
	return secret.New(line), nil
}

// readLine reads one line without its line ending; the last line of the
// input may lack one.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// readPasswordTerminal reads a password from the terminal f with echo off,
// and puts the terminal back as it was whatever happens. Ctrl-C still
// interrupts (signals stay on): the read then runs in a goroutine that is
// left blocked, which is harmless since the command is ending.
func readPasswordTerminal(ctx context.Context, f *os.File, prompt io.Writer, state *unix.Termios, text string, confirm bool) (secret.String, error) {
	fd := int(f.Fd())
	quiet := *state
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return secret.String{}, fmt.Errorf("turn off echo: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, state) }()
	r := bufio.NewReader(io.LimitReader(f, maxPasswordLine))
	ask := func(text string) (string, error) {
		fmt.Fprint(prompt, text)
		type result struct {
			line string
			err  error
		}
		done := make(chan result, 1)
		go func() {
			line, err := readLine(r)
			done <- result{line, err}
		}()
		select {
		case res := <-done:
			fmt.Fprintln(prompt) // the Enter the terminal did not echo
			return res.line, res.err
		case <-ctx.Done():
			fmt.Fprintln(prompt)
			return "", ctx.Err()
		}
	}
	pw, err := ask(text)
	if err != nil {
		return secret.String{}, fmt.Errorf("read the password: %w", err)
	}
	if pw == "" {
		return secret.String{}, errors.New("the password is empty")
	}
	if confirm {
		again, err := ask("Again: ")
		if err != nil {
			return secret.String{}, fmt.Errorf("read the password: %w", err)
		}
		if again != pw {
			return secret.String{}, errors.New("the passwords differ")
		}
	}
	return secret.New(pw), nil
}
