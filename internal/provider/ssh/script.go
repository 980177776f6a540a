package sshprov

import (
	"fmt"
	"strings"
)

// The remote side is plain POSIX sh plus the few tools every Linux host
// has (cat, mkdir, mv, rm, sha256sum, uname, kill, sleep, /proc). Secrets
// and file contents travel on the session's stdin, never on a command
// line, which every user of the host can read in /proc/PID/cmdline.
//
// Each script gets its values as quoted words that it assigns to shell
// variables first, so the rest of the script is fixed text.

// shq quotes s as one POSIX sh word: inside single quotes nothing is
// special except the single quote itself, which becomes '\”. Hand-written
// because no well-kept Go library quotes for sh (strconv.Quote is Go
// syntax, not sh).
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shjoin quotes every word and joins them with spaces.
func shjoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shq(w)
	}
	return strings.Join(q, " ")
}

// Files of the remote layout, under the work dir:
//
//	bin/drover                  the binary, shared by every cluster
//	clusters/CLUSTER/agent.tags the machine's tags (JSON), written before the agent starts
//	clusters/CLUSTER/agent.pid  "PID STARTTIME" of the agent (/proc/PID/stat field 22)
//	clusters/CLUSTER/agent.token, ca.pem   the agent's credentials (0600)
//	clusters/CLUSTER/agent.log  the agent's output
//	clusters/CLUSTER/data/      the agent's sandboxes
const (
	binPath   = "bin/drover"
	tagsFile  = "agent.tags"
	pidFile   = "agent.pid"
	tokenFile = "agent.token"
	caFile    = "ca.pem"
	logFile   = "agent.log"
	dataDir   = "data"
)

// slotDir is the directory of a cluster's agent, relative to the work dir.
func slotDir(cluster string) string { return "clusters/" + cluster }

// aliveFunc is a sh function: `alive PID START` succeeds if PID is a live
// (not zombie) process that started at START clock ticks after boot, so a
// reused PID is never mistaken for the agent. It parses /proc/PID/stat
// after the last ") ", which ends the command name whatever it holds;
// field 3 (state) is then $1 and field 22 (starttime) is ${20}.
const aliveFunc = `alive() {
	[ -n "$1" ] && [ -n "$2" ] || return 1
	_s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	_s=${_s##*) }
	_start=$2
	set -- $_s
	[ "$1" != Z ] && [ "${20}" = "$_start" ]
}
# nap sleeps a tenth of a second where sleep takes fractions, else a second.
nap() { sleep 0.1 2>/dev/null || sleep 1; }
`

// prepareScript makes the work dir and prints its absolute path, the
// kernel and machine (uname -s -m) and the sha256 of the binary there
// ("-" if none), one per line.
func prepareScript(workDir string) string {
	return fmt.Sprintf(`set -e
umask 077
wd=%s
mkdir -p -- "$wd"
cd -- "$wd"
pwd
uname -s -m
if [ -f %s ]; then sha256sum < %s | cut -d' ' -f1; else echo -; fi
`, shq(workDir), binPath, binPath)
}

// installScript copies the binary on stdin to bin/drover (through a
// temporary file and a rename, so a running agent's binary is never
// written to) and prints its sha256.
func installScript(workDir string) string {
	return fmt.Sprintf(`set -e
umask 022
cd -- %s
mkdir -p bin
tmp="bin/.drover.$$"
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" %s
trap - EXIT
sha256sum < %s | cut -d' ' -f1
`, shq(workDir), binPath, binPath)
}

// statusScript prints, for a cluster's slot, "alive" or "dead" on the
// first line and the tags file (if any) after it.
func statusScript(workDir, cluster string) string {
	return fmt.Sprintf(`%s
cd -- %s 2>/dev/null || { echo dead; exit 0; }
cd -- %s 2>/dev/null || { echo dead; exit 0; }
pid= start=
[ -f %s ] && read -r pid start < %s || true
if alive "$pid" "$start"; then echo alive; else echo dead; fi
[ -f %s ] && cat %s || true
`, aliveFunc, shq(workDir), shq(slotDir(cluster)), pidFile, pidFile, tagsFile, tagsFile)
}

// writeFileScript writes stdin to a file of a cluster's slot (made
// 0700) with mode 0600, through a temporary file and a rename.
func writeFileScript(workDir, cluster, name string) string {
	return fmt.Sprintf(`set -e
umask 077
cd -- %s
mkdir -p -- %s
cd -- %s
name=%s
cat > "$name.tmp.$$"
mv -f "$name.tmp.$$" "$name"
`, shq(workDir), shq(slotDir(cluster)), shq(slotDir(cluster)), shq(name))
}

// startScript starts the agent detached: in a session of its own
// (setsid, or nohup where there is none), stdin from /dev/null, output to
// agent.log. The agent's own shell writes "PID STARTTIME" to agent.pid
// before it execs the binary, so the pid file exists as soon as the agent
// does. The script waits (bounded) for the pid file and fails if the
// agent is not alive then. argv is the full command line, binary first.
func startScript(workDir, cluster string, argv []string) string {
	// inner runs as the agent's process: $$ is the agent's PID.
	inner := fmt.Sprintf(`_s=$(cat /proc/$$/stat); _s=${_s##*) }; set -- $_s
printf '%%s %%s\n' "$$" "${20}" > %s.tmp && mv -f %s.tmp %s && exec %s`,
		pidFile, pidFile, pidFile, shjoin(argv))
	return fmt.Sprintf(`%s
set -e
umask 077
cd -- %s
mkdir -p -- %s
cd -- %s
mkdir -p %s
rm -f %s
inner=%s
if command -v setsid >/dev/null 2>&1; then
	setsid sh -c "$inner" </dev/null >>%s 2>&1 &
else
	nohup sh -c "$inner" </dev/null >>%s 2>&1 &
fi
i=0
while [ ! -s %s ]; do
	i=$((i+1))
	if [ "$i" -gt 100 ]; then echo "the agent wrote no pid file; end of agent.log:" >&2; tail -n 20 %s >&2; exit 3; fi
	nap
done
read -r pid start < %s
if ! alive "$pid" "$start"; then echo "the agent exited at once; end of agent.log:" >&2; tail -n 20 %s >&2; exit 3; fi
echo "$pid $start"
`, aliveFunc, shq(workDir), shq(slotDir(cluster)), shq(slotDir(cluster)), dataDir, pidFile, shq(inner),
		logFile, logFile, pidFile, logFile, pidFile, logFile)
}

// stopScript stops a cluster's agent: SIGTERM, up to waitTenths tenths of
// a second for it to exit, then SIGKILL to its process group. An agent
// started with setsid leads a session of its own, which its tasks share
// even though each has its own process group: whatever is left in that
// session after the agent is gone (a task of a SIGKILLed agent) is
// SIGKILLed too. Linux does not reuse a PID while it names a live session,
// so the sweep cannot hit a stranger. The script then removes the tags,
// pid and token files, so the slot is free, and prints "stopped",
// "killed" or "gone".
func stopScript(workDir, cluster string, waitTenths int) string {
	return fmt.Sprintf(`%s
cd -- %s 2>/dev/null || { echo gone; exit 0; }
cd -- %s 2>/dev/null || { echo gone; exit 0; }
pid= start=
[ -f %s ] && read -r pid start < %s || true
how=gone
if alive "$pid" "$start"; then
	how=stopped
	_s=$(cat "/proc/$pid/stat" 2>/dev/null) || true
	_s=${_s##*) }
	set -- $_s
	leader=no
	[ "$4" = "$pid" ] && leader=yes
	kill -s TERM "$pid" 2>/dev/null || true
	i=0
	while alive "$pid" "$start"; do
		i=$((i+1))
		if [ "$i" -gt %d ]; then
			how=killed
			[ "$leader" = yes ] && kill -s KILL -- "-$pid" 2>/dev/null
			kill -s KILL "$pid" 2>/dev/null
			j=0
			while alive "$pid" "$start" && [ "$j" -lt 50 ]; do j=$((j+1)); nap; done
			if alive "$pid" "$start"; then echo "agent $pid survived SIGKILL" >&2; exit 3; fi
			break
		fi
		nap
	done
	if [ "$leader" = yes ]; then
		for f in /proc/[0-9]*/stat; do
			_s=$(cat "$f" 2>/dev/null) || continue
			_p=${_s%%%% *}
			_s=${_s##*) }
			set -- $_s
			[ "$4" = "$pid" ] && [ "$1" != Z ] && kill -s KILL "$_p" 2>/dev/null
		done
	fi
fi
rm -f %s %s %s
echo "$how"
`, aliveFunc, shq(workDir), shq(slotDir(cluster)), pidFile, pidFile, waitTenths, tagsFile, pidFile, tokenFile)
}
