package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// modulePath identifies the payswitch repository when loadgen looks for it.
const modulePath = "github.com/payswitch/payswitch"

// Timings of the serve process.
const (
	healthTimeout = 30 * time.Second // from start until /healthz shows the link bound
	stopGrace     = 15 * time.Second // from SIGTERM until SIGKILL
)

// The SMPP link both the switch and the echo ESME use: TPS and window high enough that
// the link itself is not what is measured.
const (
	linkTPS    = 100000
	linkWindow = 64
)

// repoRoot walks up from the working directory to the go.mod of payswitch.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "module "+modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory; run loadgen inside the repository or give -bin", modulePath)
		}
		dir = parent
	}
}

// buildSwitch builds the payswitch binary into dir and returns its path.
func buildSwitch(ctx context.Context, dir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build payswitch: %w", err)
	}
	bin := filepath.Join(dir, "payswitch")
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", root, err, out.Bytes())
	}
	return bin, nil
}

// switchConfig is what loadgen puts into the serve process's config.yaml.
type switchConfig struct {
	dir         string // database, secrets and log live here
	dbURL       string // PostgreSQL; "": a SQLite file in dir
	httpAddr    string
	smscAddr    string
	password    string // the SMSC account's
	token       string // the operator token
	otpSecret   string
	synchronous string
	replica     bool // stream to a file replica in dir (-replica)
	// webhookWorkers is webhooks.workers (-webhook-workers); 0 leaves the switch's default.
	webhookWorkers int
	// groups is database.groups on PostgreSQL (-groups); 0 leaves the switch's default.
	groups int
	// noReceiptDLR sets smpp.payer_receipt_dlr: false (-payer-receipt-dlr=false).
	noReceiptDLR bool
}

// yaml renders the config. Every string goes through strconv.Quote, which YAML reads as
// a double-quoted scalar for the ASCII values used here.
func (c switchConfig) yaml() string {
	q := strconv.Quote
	return fmt.Sprintf(`# written by tools/loadgen
database:
%s
%slog:
  level: warn
  format: json
http:
  listen: %s
  tokens:
    - name: loadgen
      token: %s
      role: operator
currency: KES
shortcode: %s
limits:
  min_amount: 1000
  max_amount: 15000000
  daily_max: 100000000000
smpp:
  links:
    - name: loadsim
      address: %s
      system_id: payswitch
      password: %s
      bind: transceiver
      prefixes: []
      tps: %d
      window: %d
  demo_smsc:
    listen: ""
    phone_api: ""
  payer_receipt_dlr: %t
otp:
  digits: %d
  secret: %s
fraud:
  wrong_codes_lock: 0
  requests_per_minute: 0
# loadgen's tills and request phones get far more requests than people do: no caps.
requests:
  per_merchant_per_minute: 0
  per_number_per_day: 0
%s`, c.database(), c.replicas(), q(c.httpAddr), q(c.token), q(shortcode),
		q(c.smscAddr), q(c.password), linkTPS, linkWindow, !c.noReceiptDLR, codeDigits, q(c.otpSecret), c.webhooks())
}

func (c switchConfig) database() string {
	if c.dbURL != "" {
		if c.groups > 0 {
			return fmt.Sprintf("  url: %s\n  groups: %d", strconv.Quote(c.dbURL), c.groups)
		}
		return "  url: " + strconv.Quote(c.dbURL)
	}
	return fmt.Sprintf("  path: %s\n  synchronous: %s", strconv.Quote(filepath.Join(c.dir, "payswitch.db")), c.synchronous)
}

func (c switchConfig) webhooks() string {
	if c.webhookWorkers == 0 {
		return ""
	}
	return fmt.Sprintf("webhooks:\n  workers: %d\n", c.webhookWorkers)
}

func (c switchConfig) replicas() string {
	if !c.replica {
		return ""
	}
	return replicaYAML(c.dir)
}

// serveProc is a running `payswitch serve`.
type serveProc struct {
	cmd     *exec.Cmd
	logPath string
	base    string        // http://host:port
	exited  chan struct{} // closed when the process has ended; err is then set
	err     error
}

// startServe writes the config into c.dir and starts bin with it, its log going to
// serve.log there. It returns once /healthz answers with every link bound.
func startServe(ctx context.Context, bin string, c switchConfig) (*serveProc, error) {
	cfgPath := filepath.Join(c.dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(c.yaml()), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(c.dir, "serve.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "serve", "-config", cfgPath)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = serveProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &serveProc{cmd: cmd, logPath: logPath, base: "http://" + c.httpAddr, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitHealthy(ctx); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitHealthy polls /healthz until the database is up and every link bound.
func (p *serveProc) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		if ok, why := p.healthy(ctx); ok {
			return nil
		} else if why != "" {
			last = why
		}
		select {
		case <-p.exited:
			return fmt.Errorf("serve exited during start-up (%v); its log:\n%s", p.err, p.logTail(20))
		case <-ctx.Done():
			return fmt.Errorf("serve not healthy after %s (last: %s): %w; its log:\n%s", healthTimeout, last, ctx.Err(), p.logTail(20))
		case <-tick.C:
		}
	}
}

func (p *serveProc) healthy(ctx context.Context) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/healthz", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "" // not listening yet
	}
	defer resp.Body.Close()
	var h struct {
		Status string `json:"status"`
		Links  []struct {
			Name, State string
		} `json:"links"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return false, fmt.Sprintf("healthz: %v", err)
	}
	if resp.StatusCode != http.StatusOK || len(h.Links) == 0 {
		return false, fmt.Sprintf("healthz: %d %s", resp.StatusCode, h.Status)
	}
	for _, l := range h.Links {
		if l.State != "bound" {
			return false, fmt.Sprintf("link %s is %s", l.Name, l.State)
		}
	}
	return true, ""
}

// peakRSSMB is the serve process's peak resident set (VmHWM) in MiB, or -1 when it
// cannot be read (not Linux, or the process has gone).
func (p *serveProc) peakRSSMB() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// VmHWM:     123456 kB
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == "VmHWM:" && fields[2] == "kB" {
			kb, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}

// cpuTime is the CPU time (user and system) the serve process has used so far, or -1
// when it cannot be read (not Linux, or the process has gone).
func (p *serveProc) cpuTime() time.Duration {
	return procCPU(p.cmd.Process.Pid)
}

// procCPU reads utime and stime of a process from /proc/<pid>/stat, or returns -1.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; the fields after it start past ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return clockTicks(ut + st)
}

// clockTicks is n of /proc's clock ticks (USER_HZ, 100 on every Linux platform Go
// supports) as a duration.
func clockTicks(n int64) time.Duration { return time.Duration(n) * time.Second / 100 }

// running reports whether the process is still up.
func (p *serveProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks serve to shut down (SIGTERM) and kills it when it has not ended after
// stopGrace. It returns the process's exit error, if it ended with one other than the
// signal loadgen sent.
func (p *serveProc) stop() error {
	if !p.running() {
		return p.exitErr()
	}
	_ = p.cmd.Process.Signal(sigTerm)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.exitErr()
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("serve did not stop within %s of SIGTERM; killed", stopGrace)
	}
}

func (p *serveProc) exitErr() error {
	var ee *exec.ExitError
	if p.err == nil || errors.As(p.err, &ee) && ee.ExitCode() == 0 {
		return nil
	}
	return fmt.Errorf("serve: %w; its log:\n%s", p.err, p.logTail(20))
}

// logTail returns the last n lines of serve's log.
func (p *serveProc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
