package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/secret"
)

// The browser test drives the web UI as a user does: a real headless
// Chromium, steered by chromedp over the DevTools protocol, against a real
// 'drover dev' cluster (server, agent, task processes) of the binary
// TestMain built. It logs in through the form, follows links by clicking
// them, and reads what the pages show.

const (
	// chromiumPath is Debian's chromium (apt-get install chromium). The
	// test is skipped, loudly, where it is missing.
	chromiumPath = "/usr/bin/chromium"
	// browserTimeout bounds the whole browser test, cluster start
	// included; it normally takes a few seconds.
	browserTimeout = 60 * time.Second
)

func TestBrowser(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("NOT TESTED: the web UI browser test needs Chromium at %s (apt-get install -y chromium): %v", chromiumPath, err)
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()

	addr, err := freeAddr()
	require.NoError(t, err)
	base := "http://" + addr
	data := t.TempDir()
	dev := startDrover(t, nil, "dev", "--data", data, "--listen", addr, "--nodes", "1")
	dev.waitOutput(t, `drover dev: ready`)
	password := readDataFile(t, filepath.Join(data, "admin.password"))
	token := readDataFile(t, filepath.Join(data, "admin.token"))
	cl, err := client.New(base, nil)
	require.NoError(t, err)
	cl = cl.WithToken(secret.New(token))

	b := newBrowser(ctx, t, base)

	// 1. An anonymous visitor is sent to the login form; a wrong password
	// is refused on the form; the right one leads back to the jobs.
	b.navigate("/")
	require.Equal(t, base+"/login", b.location(), "an anonymous visit of / goes to the login form")
	b.do(
		chromedp.SendKeys(chromedp.CSS(`#login input[name="user"]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="password"]`), "not-the-password"),
	)
	require.EqualValues(t, 401, b.click(chromedp.CSS(`#login button[type="submit"]`)), "a wrong password is refused")
	require.Equal(t, "Wrong user name or password.", b.text(chromedp.CSS(`p.problem`)))
	require.Equal(t, base+"/login", b.location(), "a wrong password stays on the login form")
	b.do(
		chromedp.Clear(chromedp.CSS(`#login input[name="user"]`)),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="user"]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="password"]`), password),
	)
	b.clickAndLoad(chromedp.CSS(`#login button[type="submit"]`))
	require.Equal(t, base+"/", b.location(), "the login leads back to the jobs page")
	require.Equal(t, "admin", b.text(chromedp.CSS("#user")), "the header names the signed-in user")

	// 2. A job whose instance 1 fails its first attempt, retried once.
	const key = "web/dev/retry"
	browserSubmit(ctx, t, cl, `job: `+key+`
type: batch
instances: 2
task:
  command: ["sh", "-c", "echo \"instance $DROVER_INSTANCE attempt $DROVER_ATTEMPT\"; test \"$DROVER_ATTEMPT\" = 2 || test \"$DROVER_INSTANCE\" = 0"]
  resources: {cpu: 100, memory: 32MiB}
retry: {attempts: 1, backoff: 0s}
`)
	j := browserWaitEnd(ctx, t, cl, key)
	require.Equal(t, "SUCCEEDED", j.State, describeJob(j))
	var failed api.Task
	for _, tk := range j.Tasks {
		if tk.Instance == 1 && tk.Attempt == 1 {
			failed = tk
		}
	}
	require.Equal(t, "FAILED", failed.State, "instance 1's first task: %s", describeJob(j))

	// 3. The jobs page lists it with its state; its page shows run 1 and
	// why instance 1 took a second attempt; the failed task's page shows
	// its output.
	b.navigate("/")
	row := textRow(t, b.text(chromedp.CSS("#jobs")), key)
	require.Contains(t, row, "SUCCEEDED", "the jobs page shows the job's state: %q", row)
	b.clickAndLoad(chromedp.CSS(`#jobs a[href="/ui/jobs/` + key + `"]`))
	require.Equal(t, base+"/ui/jobs/"+key, b.location())
	heading := b.text(chromedp.CSS(`main h2`))
	require.Equal(t, key+" SUCCEEDED", heading)
	runs := b.text(chromedp.CSS("#runs"))
	run1 := strings.Split(textRow(t, runs, "1"), "\t")
	require.Len(t, run1, 8, "run 1's row: %q", run1)
	require.Equal(t, []string{"SUCCEEDED", "3"}, run1[6:], "the Runs table shows run 1's state and its 3 tasks for 2 instances")
	require.Contains(t, runs, "instance 1 attempt 2: retry after "+failed.ID+", FAILED",
		"the Runs table says why instance 1 was retried:\n%s", runs)
	b.clickAndLoad(chromedp.CSS(`#runs a[href="/ui/tasks/` + failed.ID + `"]`))
	require.Equal(t, base+"/ui/tasks/"+failed.ID, b.location())
	require.Equal(t, "task "+failed.ID+" FAILED", b.text(chromedp.CSS(`main h2`)))
	b.waitText(chromedp.CSS("#stdout"), "instance 1 attempt 1")

	// 4. A scheduled job shows its next fire on the jobs page.
	const nightly = "web/dev/nightly"
	browserSubmit(ctx, t, cl, `job: `+nightly+`
type: batch
instances: 1
schedule: {cron: "0 2 * * *"}
task:
  command: ["true"]
  resources: {cpu: 100, memory: 32MiB}
`)
	next := browserNextFire(ctx, t, cl, nightly)
	b.clickAndLoad(chromedp.CSS(`header nav a[href="/"]`))
	row = textRow(t, b.text(chromedp.CSS("#jobs")), nightly)
	require.Contains(t, row, "SCHEDULED", "the jobs page shows the job as scheduled: %q", row)
	require.Contains(t, row, next.Format("2006-01-02 15:04:05 MST"), "the jobs page shows the next fire: %q", row)
	require.Equal(t, 2, next.Hour(), "0 2 * * * fires at 02:00, not %s", next)

	// 5. After logging out, a protected page sends the browser to the
	// login form again, and comes back to it after a login.
	b.clickAndLoad(chromedp.CSS(`#logout button[type="submit"]`))
	require.Equal(t, base+"/login", b.location(), "logging out shows the login form")
	b.navigate("/ui/jobs/" + key)
	require.Equal(t, base+"/login?next="+url.QueryEscape("/ui/jobs/"+key), b.location(),
		"a protected page after logout goes to the login form")
	b.do(
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.WaitNotPresent(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="user"]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="password"]`), password),
	)
	b.clickAndLoad(chromedp.CSS(`#login button[type="submit"]`))
	require.Equal(t, base+"/ui/jobs/"+key, b.location(), "a login from a protected page goes back to it")
	require.Equal(t, key+" SUCCEEDED", b.text(chromedp.CSS(`main h2`)))
}

// browser is a headless Chromium tab on the cluster at base. Every
// action fails the test on error; all are bounded by the test's context.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// newBrowser starts Chromium with a fresh profile. It closes when ctx
// ends or the test does.
func newBrowser(ctx context.Context, t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // we run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// The machine has no network beyond loopback: without these
		// Chromium keeps trying (and logging) its own connections.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit
	})
	// The first action starts the browser, bound to ctx.
	require.NoError(t, chromedp.Do(tabCtx), "start chromium")
	return &browser{t: t, ctx: tabCtx, base: base}
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, actions...), "at %s", b.location())
}

// navigate opens path on the cluster and waits for the page to load.
func (b *browser) navigate(path string) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, chromedp.Navigate(b.base+path)), "open %s", path)
}

// clickAndLoad clicks the element, as a user does, and waits for the page
// the click leads to.
func (b *browser) clickAndLoad(sel chromedp.CSS) {
	b.t.Helper()
	status := b.click(sel)
	require.Less(b.t, status, int64(400), "click %s: the page answered %d at %s", sel, status, b.location())
}

// click clicks the element and returns the HTTP status of the page the
// click leads to, once it loaded.
func (b *browser) click(sel chromedp.CSS) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(sel))
	require.NoError(b.t, err, "click %s", sel)
	return resp.Status
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	require.NoError(b.t, err)
	return loc
}

// text returns the visible text of the first element sel matches, once
// it is there.
func (b *browser) text(sel chromedp.CSS) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	require.NoError(b.t, err, "read %s at %s", sel, b.location())
	return strings.TrimSpace(s)
}

// waitText waits until the element's text contains want, reloading the
// page while it does not: a task's output reaches the server shortly
// after the task ended, and the page shows what the server had.
func (b *browser) waitText(sel chromedp.CSS, want string) {
	b.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := b.text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s at %s: no %q within %s; it shows %q", sel, b.location(), want, waitTimeout, got)
		}
		time.Sleep(pollEvery)
		require.NoError(b.t, chromedp.Do(b.ctx, chromedp.Reload()), "reload %s", b.location())
	}
}

// textRow returns the row of a table's visible text (cells split by tabs,
// rows by new lines) whose first cell is first.
func textRow(t *testing.T, table, first string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if cell, _, _ := strings.Cut(line, "\t"); strings.TrimSpace(cell) == first {
			return line
		}
	}
	t.Fatalf("no row %q in the table:\n%s", first, table)
	return ""
}

// readDataFile reads a file drover dev wrote into its data directory.
func readDataFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := strings.TrimSpace(string(b))
	require.NotEmpty(t, s, "%s is empty", path)
	return s
}

// browserSubmit submits a job document, which must be accepted.
func browserSubmit(ctx context.Context, t *testing.T, cl *client.Client, doc string) {
	t.Helper()
	_, err := cl.SubmitJob(ctx, []byte(doc), "")
	require.NoError(t, err, "submit:\n%s", doc)
}

// browserWaitEnd long-polls a job until it is no longer RUNNING.
func browserWaitEnd(ctx context.Context, t *testing.T, cl *client.Client, key string) api.Job {
	t.Helper()
	for {
		j, err := cl.WaitJobEnd(ctx, key, 5*time.Second)
		require.NoError(t, err, "wait for job %s to end", key)
		if j.State != "RUNNING" {
			return j
		}
	}
}

// browserNextFire returns when the job's schedule fires next.
func browserNextFire(ctx context.Context, t *testing.T, cl *client.Client, key string) time.Time {
	t.Helper()
	ss, err := cl.ListSchedules(ctx)
	require.NoError(t, err)
	for _, s := range ss {
		if s.Job == key {
			require.NotNil(t, s.Next, "schedule of %s has no next fire", key)
			return *s.Next
		}
	}
	t.Fatalf("no schedule for %s in %+v", key, ss)
	return time.Time{}
}
