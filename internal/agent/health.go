package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// allocatePorts finds a free TCP port for each name. The port is free when
// found and handed to the task right away; another process could take it
// in between, which the task then reports by failing to listen.
func allocatePorts(names []string) (map[string]int, error) {
	ports := make(map[string]int, len(names))
	for _, name := range names {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			return nil, fmt.Errorf("port %s: %w", name, err)
		}
		ports[name] = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
	}
	return ports, nil
}

// healthURL puts the task's ports into a health check URL: {{port}} is the
// first named port, {{port.NAME}} the one named NAME.
func healthURL(raw string, names []string, ports map[string]int) string {
	for _, n := range names {
		raw = strings.ReplaceAll(raw, "{{port."+n+"}}", strconv.Itoa(ports[n]))
	}
	if len(names) > 0 {
		raw = strings.ReplaceAll(raw, "{{port}}", strconv.Itoa(ports[names[0]]))
	}
	return raw
}

// checkHealth runs the task's health check every interval, the first one
// interval after the start; failures in a row up to the limit stop the
// task, which ends FAILED (health_failed) and, for a service, is started
// again by the server.
func (t *runTask) checkHealth(ctx context.Context) {
	hc := t.as.Health
	interval, timeout := time.Duration(hc.Interval), time.Duration(hc.Timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.handle.Done():
			return
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := t.checkOnce(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failed = 0
			continue
		}
		failed++
		t.agent.log.Info("health check failed", "task", t.as.TaskID, "failures", failed, "err", err)
		if failed >= hc.Failures {
			t.agent.mu.Lock()
			t.unhealthy = true
			t.agent.mu.Unlock()
			t.kill(fmt.Sprintf("health check failed %d times in a row: %v", failed, err))
			return
		}
	}
}

func (t *runTask) checkOnce(ctx context.Context) error {
	hc := t.as.Health
	if hc.HTTP != "" {
		url := healthURL(hc.HTTP, t.as.Ports, t.ports)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
	c := exec.CommandContext(ctx, hc.Command[0], hc.Command[1:]...)
	c.Dir = filepath.Join(t.agent.cfg.DataDir, "tasks", t.as.TaskID, "work")
	c.Env = append(c.Environ(), envList(t.env)...)
	c.WaitDelay = time.Second
	out, err := c.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		if msg != "" {
			return fmt.Errorf("%v: %s", err, msg)
		}
		return err
	}
	return nil
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
