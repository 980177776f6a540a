package ec2

import (
	"fmt"
	"strings"

	"github.com/drover-dev/drover/internal/provider"
)

// Where the boot script puts things on an instance.
const (
	binaryPath   = "/usr/local/bin/drover"
	confDir      = "/etc/drover"
	tokenPath    = confDir + "/agent.token"
	caPath       = confDir + "/ca.pem"
	setupPath    = confDir + "/setup.sh"
	dataDir      = "/var/lib/drover"
	agentLogPath = "/var/log/drover-agent.log"
	// agentUnit is the systemd unit the agent runs as.
	agentUnit = "drover-agent"
)

// bootScript is the user data of a drover node: a POSIX sh script that
// cloud-init runs once, as root, on the instance's first boot.
//
// In order it: writes the agent token and CA bundle under a umask of 077
// (so the token file is 0600 from its first byte, never on a command line:
// it is in a quoted here-document, which the shell writes itself); fetches
// drover from the agent's DownloadURL if set (with curl, or wget where
// curl is missing), and checks that it runs on this machine and says it
// is drover before putting it in place; runs the user's setup script;
// and starts `drover agent`.
//
// The agent runs under systemd-run where systemd is the init (a transient
// unit "drover-agent" restarted on failure, its output in the journal),
// and under nohup otherwise (its output in /var/log/drover-agent.log).
// systemd-run needs no unit file in the image and survives the end of
// cloud-init; a transient unit is not started again after a reboot, which
// the default shutdown behavior (terminate) never needs.
//
// root prefixes every path the script writes; it is "" on an instance and
// a temporary directory in tests, which run the script for real.
func bootScript(a provider.Agent, node, userData, root string) string {
	var b strings.Builder
	p := func(path string) string { return shellQuote(root + path) }
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	line("#!/bin/sh")
	line("# Boot script of a drover node, written by drover's ec2 provider.")
	line("set -eu")
	line("umask 077")
	line("mkdir -p %s %s", p(confDir), p(dataDir))
	b.WriteString(hereDoc(p(tokenPath), a.Token))
	caFile := ""
	if len(a.CACert) > 0 {
		caFile = root + caPath
		b.WriteString(hereDoc(p(caPath), string(a.CACert)))
	}
	line("umask 022")

	if a.DownloadURL != "" {
		line("mkdir -p %s", p("/usr/local/bin"))
		line("tmp=%s", p(binaryPath+".download"))
		line("if command -v curl >/dev/null 2>&1; then")
		line("\tcurl -fsSL --retry 5 -o \"$tmp\" %s", shellQuote(a.DownloadURL))
		line("else")
		line("\twget -q -O \"$tmp\" %s", shellQuote(a.DownloadURL))
		line("fi")
		line("chmod 0755 \"$tmp\"")
		// A page of HTML, an empty file or a binary for another
		// architecture downloads fine; only running it tells. The shell
		// runs a file that is no executable as a script (an empty one
		// "succeeds"), so the help text must name drover too.
		line("if ! \"$tmp\" --help 2>/dev/null | grep -q drover; then")
		line("\techo %s >&2", shellQuote("drover: "+a.DownloadURL+" did not give a drover that runs here"))
		line("\texit 1")
		line("fi")
		line("mv -f \"$tmp\" %s", p(binaryPath))
	}
	line("if [ ! -x %s ]; then", p(binaryPath))
	line("\techo %s >&2", shellQuote("drover: no executable drover at "+binaryPath))
	line("\texit 1")
	line("fi")

	if userData != "" {
		b.WriteString(hereDoc(p(setupPath), userData))
		line("chmod 0700 %s", p(setupPath))
		line("%s", p(setupPath))
	}

	args := []string{root + binaryPath}
	args = append(args, a.Args(node, root+dataDir, root+tokenPath, caFile)...)
	cmd := make([]string, len(args))
	for i, arg := range args {
		cmd[i] = shellQuote(arg)
	}
	line("if command -v systemd-run >/dev/null 2>&1 && [ -d /run/systemd/system ]; then")
	line("\tsystemd-run --unit=%s --description='drover agent' --property=Restart=on-failure --property=RestartSec=5 %s",
		agentUnit, strings.Join(cmd, " "))
	line("else")
	line("\tnohup %s >>%s 2>&1 </dev/null &", strings.Join(cmd, " "), p(agentLogPath))
	line("fi")
	return b.String()
}

// hereDoc is shell that writes content (plus a final newline if it lacks
// one) to the file at quotedPath. The delimiter is quoted, so the shell
// expands nothing inside, and chosen to be no line of content.
func hereDoc(quotedPath, content string) string {
	if !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	lines := make(map[string]bool)
	for _, l := range strings.Split(content, "\n") {
		lines[l] = true
	}
	delim := "DROVER_EOF"
	for i := 1; lines[delim]; i++ {
		delim = fmt.Sprintf("DROVER_EOF_%d", i)
	}
	return "cat >" + quotedPath + " <<'" + delim + "'\n" + content + delim + "\n"
}

// shellQuote quotes s as one word of POSIX sh: inside single quotes
// nothing is special except the single quote itself, which is closed,
// escaped and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
