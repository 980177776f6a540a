package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
)

// maxExecOutput is how much of each node's output node exec prints.
const maxExecOutput = 64 << 10

func newNodeExecCmd() *cobra.Command {
	var f clientFlags
	var poolName, role string
	var all bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "exec (--pool P | --all) -- CMD [ARG...]",
		Short: "Run a command once on every node of a pool (or every node) and print each node's output and exit code",
		Long: `Run a command once on every READY node of a pool (--pool) or of the cluster
(--all), as a one-off task pinned to each node: a batch job ROLE/exec/ID-N per
node (--role, default ops; you need job:submit on it), without retries. Each
node's output and exit code are printed in node order; the exit code is 0
only if the command succeeded everywhere (3 otherwise).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (poolName == "") == !all {
				return errors.New("give --pool P or --all (not both)")
			}
			if !job.ValidName(role) {
				return fmt.Errorf("--role %q: %s", role, job.NameRule)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var nodes []api.Node
			if all {
				nodes, err = c.ListNodes(ctx)
			} else {
				nodes, err = c.ListNodesInPool(ctx, poolName)
			}
			if err != nil {
				return err
			}
			nodes = slices.DeleteFunc(nodes, func(n api.Node) bool { return n.State != "READY" })
			if len(nodes) == 0 {
				return errors.New("no READY node to run on")
			}
			slices.SortFunc(nodes, func(a, b api.Node) int { return strings.Compare(a.Name, b.Name) })
			var rnd [4]byte
			_, _ = rand.Read(rnd[:])
			id := hex.EncodeToString(rnd[:])
			type started struct {
				node string
				res  api.SubmitResponse
			}
			var runs []started
			for i, n := range nodes {
				attempts := 0
				spec := api.JobSpec{Job: fmt.Sprintf("%s/exec/%s-%d", role, id, i), Node: n.Name,
					Task: api.TaskSpec{Command: args}, Retry: &api.RetrySpec{Attempts: &attempts},
					Reschedule: &api.RescheduleSpec{Attempts: &attempts}}
				if timeout > 0 {
					spec.Task.Timeout = timeout.String()
				}
				doc, err := json.Marshal(spec)
				if err != nil {
					return err
				}
				if _, err := jobspec.Parse(doc); err != nil {
					return err
				}
				res, err := c.SubmitJobWithRetry(ctx, doc, "exec-"+id+"-"+strconv.Itoa(i))
				if err != nil {
					return err
				}
				runs = append(runs, started{n.Name, res})
			}
			out := cmd.OutOrStdout()
			failed := 0
			for _, r := range runs {
				j, err := waitRunEnd(cmd, c, r.res.Job, r.res.Run)
				if err != nil {
					return err
				}
				code := "-"
				var taskID string
				if len(j.Tasks) > 0 {
					t := j.Tasks[len(j.Tasks)-1]
					taskID = t.ID
					if t.ExitCode != nil {
						code = strconv.Itoa(*t.ExitCode)
					}
				}
				if j.RunState != "SUCCEEDED" {
					failed++
				}
				fmt.Fprintf(out, "== node %s: %s, exit code %s\n", r.node, j.RunState, code)
				if taskID == "" {
					continue
				}
				for _, stream := range []string{"stdout", "stderr"} {
					rc, err := c.TaskLogs(ctx, taskID, stream, 0, false)
					if err != nil {
						return err
					}
					b, _ := io.ReadAll(io.LimitReader(rc, maxExecOutput))
					rc.Close()
					if len(b) > 0 {
						text := cleanText(string(b))
						if stream == "stderr" {
							text = "[stderr] " + strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n[stderr] ") + "\n"
						}
						fmt.Fprint(out, text)
						if !strings.HasSuffix(text, "\n") {
							fmt.Fprintln(out)
						}
					}
				}
			}
			if failed > 0 {
				return &exitError{code: exitJobFailed, msg: fmt.Sprintf("the command did not succeed on %d of %d nodes", failed, len(runs))}
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&poolName, "pool", "", "run on every READY node of this pool")
	cmd.Flags().BoolVar(&all, "all", false, "run on every READY node")
	cmd.Flags().StringVar(&role, "role", "ops", "the role (tenant) the one-off jobs belong to")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop the command after this long on each node (0: no limit)")
	return cmd
}

// waitRunEnd waits, without printing, until a run has ended.
func waitRunEnd(cmd *cobra.Command, c *client.Client, key string, run int) (api.Job, error) {
	var index int64
	for {
		j, err := c.WaitRun(cmd.Context(), key, run, index, 30*time.Second)
		if err != nil {
			return api.Job{}, err
		}
		if j.RunState != "RUNNING" && j.RunState != "WAITING" {
			return j, nil
		}
		index = j.EventIndex
	}
}

func newNodeSSHCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "ssh NODE [-- CMD...]",
		Short: "Open ssh to a pool's node with the pool's ssh settings",
		Long: `Open ssh to a node of an ssh or ec2 pool, found by its name, its machine ID,
its index in its pool (POOL/N, in launch order) or its address, with the
pool's user, port and key (ssh pools: the host's settings; ec2 pools: the node
spec's ssh_user and ssh_key_file). A command after -- runs instead of a shell.
Nodes of local pools run on this machine: there is nothing to ssh to.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			target, err := findSSHTarget(cmd, c, args[0])
			if err != nil {
				return err
			}
			sshBin, err := exec.LookPath("ssh")
			if err != nil {
				return errors.New("node ssh needs the ssh client (Debian: openssh-client)")
			}
			argv := append([]string{"ssh"}, target.args()...)
			argv = append(argv, args[1:]...)
			// Hand the terminal to ssh: its exit code is ours.
			return syscall.Exec(sshBin, argv, os.Environ())
		},
	}
	f.register(cmd, false)
	return cmd
}

// sshTarget is how to reach one node.
type sshTarget struct {
	user, address, keyFile, knownHosts string
	port                               int
}

func (t sshTarget) args() []string {
	var a []string
	if t.port != 0 && t.port != 22 {
		a = append(a, "-p", strconv.Itoa(t.port))
	}
	if t.keyFile != "" {
		a = append(a, "-i", t.keyFile)
	}
	if t.knownHosts != "" {
		a = append(a, "-o", "UserKnownHostsFile="+t.knownHosts, "-o", "StrictHostKeyChecking=yes")
	}
	dest := t.address
	if t.user != "" {
		dest = t.user + "@" + dest
	}
	return append(a, dest)
}

// findSSHTarget resolves NODE (name, machine ID, POOL/N or address) among
// the pools' machines.
func findSSHTarget(cmd *cobra.Command, c *client.Client, want string) (sshTarget, error) {
	ctx := cmd.Context()
	pools, err := c.ListPools(ctx)
	if err != nil {
		return sshTarget{}, err
	}
	for _, ps := range pools {
		p, err := c.GetPool(ctx, ps.Name)
		if err != nil {
			return sshTarget{}, err
		}
		var live []api.Machine
		for _, m := range p.Machines {
			if m.State != "terminated" && m.State != "failed" {
				live = append(live, m)
			}
		}
		for i, m := range live {
			if m.Node != want && m.ID != want && m.Address != want && want != fmt.Sprintf("%s/%d", p.Name, i) {
				continue
			}
			return sshTargetOf(p, m)
		}
	}
	return sshTarget{}, fmt.Errorf("no machine of any pool is %q (give a node name, machine ID, POOL/N or address; see drover pool show)", want)
}

// sshTargetOf reads the ssh settings of a machine from its pool's node spec.
func sshTargetOf(p api.Pool, m api.Machine) (sshTarget, error) {
	spec := p.Spec.Node
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	num := func(m map[string]any, k string) int { n, _ := m[k].(float64); return int(n) }
	switch p.Provider {
	case "local":
		return sshTarget{}, fmt.Errorf("node %s is a local machine of pool %s: it runs on the server's machine, with no ssh", m.Node, p.Name)
	case "ec2":
		if m.Address == "" {
			return sshTarget{}, fmt.Errorf("node %s has no address yet", m.Node)
		}
		return sshTarget{user: str(spec, "ssh_user"), address: m.Address, keyFile: str(spec, "ssh_key_file")}, nil
	case "ssh":
		defaults, _ := spec["defaults"].(map[string]any)
		hosts, _ := spec["hosts"].([]any)
		for _, h := range hosts {
			host, _ := h.(map[string]any)
			port := num(host, "port")
			if port == 0 {
				port = num(defaults, "port")
			}
			if port == 0 {
				port = 22
			}
			// The ssh provider's machine IDs are USER@ADDRESS:PORT/CLUSTER.
			if !strings.Contains(m.ProviderID, fmt.Sprintf("@%s:%d/", str(host, "address"), port)) {
				continue
			}
			t := sshTarget{user: str(host, "user"), address: str(host, "address"), port: port,
				keyFile: str(host, "key_file"), knownHosts: str(spec, "known_hosts_file")}
			if t.user == "" {
				t.user = str(defaults, "user")
			}
			if t.user == "" {
				t.user = "root" // the ssh provider's default
			}
			if t.keyFile == "" {
				t.keyFile = str(defaults, "key_file")
			}
			return t, nil
		}
		return sshTarget{}, fmt.Errorf("node %s (%s): no host of pool %s matches it", m.Node, m.ProviderID, p.Name)
	}
	return sshTarget{}, fmt.Errorf("pool %s: provider %s has no ssh", p.Name, p.Provider)
}
