package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// server is the `payswitch serve` process under test: started, killed with SIGKILL and
// started again on the same config and database.
type server struct {
	bin, config, logPath, dir string
	api                       *client

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	err    error         // cmd.Wait's result, once exited is closed
	starts int
}

// start runs serve and returns once it is running (not yet healthy; see waitHealthy).
// Its stdout and stderr are appended to logPath.
func (s *server) start() error {
	f, err := os.OpenFile(s.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own descriptor
	s.starts++
	fmt.Fprintf(f, "=== crashtest: start %d at %s\n", s.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.bin, "serve", "-config", s.config)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	exited := s.exited
	go func() {
		s.err = cmd.Wait()
		close(exited)
	}()
	return nil
}

// running reports whether the process is still alive.
func (s *server) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// refusedStart reports whether the process ended by itself at start because no database
// server took writes (serve's "is unreachable" exit), which a node started during a
// failover's outage must do.
func (s *server) refusedStart() bool {
	return s.cmd != nil && !s.running() && strings.Contains(s.logTail(3), "is unreachable: start PostgreSQL")
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would, and waits for it.
func (s *server) kill() error {
	if !s.running() {
		return s.unexpectedExit()
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill serve: %w", err)
	}
	<-s.exited
	return nil
}

// stop asks the process to shut down with SIGTERM and waits up to grace for it.
func (s *server) stop(grace time.Duration) error {
	if !s.running() {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop serve: %w", err)
	}
	select {
	case <-s.exited:
		if s.err != nil {
			return fmt.Errorf("serve exited with %v after SIGTERM", s.err)
		}
		return nil
	case <-time.After(grace):
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
		return fmt.Errorf("serve did not stop within %s of SIGTERM; killed", grace)
	}
}

// unexpectedExit describes a process that ended without being asked to.
func (s *server) unexpectedExit() error {
	return fmt.Errorf("serve exited by itself (%v); last lines of %s:\n%s", s.err, s.logPath, s.logTail(20))
}

// waitHealthy waits until /healthz says ok (database writable, every link bound).
func (s *server) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if !s.running() {
			return s.unexpectedExit()
		}
		if s.api.healthy(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("serve not healthy within %s; last lines of %s:\n%s", timeout, s.logPath, s.logTail(20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logTail is the last n lines of the server's log.
func (s *server) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// raced reports whether the log holds a report of the race detector (with -race).
func (s *server) raced() bool {
	b, err := os.ReadFile(s.logPath)
	return err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE"))
}

// command runs the switch binary with args (export, verify) and returns its output.
func (s *server) command(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// buildSwitch builds the payswitch binary from the module that holds the working
// directory into dir.
func buildSwitch(ctx context.Context, dir string, race bool) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "payswitch")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", root, err, out)
	}
	return bin, nil
}

// moduleRoot walks up from the working directory to the go.mod of the payswitch module.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/payswitch/payswitch\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/payswitch/payswitch above the working directory; give -bin")
		}
		dir = parent
	}
}

// freePort returns a loopback address whose port was free a moment ago. The switch
// keeps it across restarts, as a real deployment keeps its port.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// switchConfig is config.yaml for the switch under test: the shipped config's keys,
// with the demo SMSC off and the one link bound to crashtest's simulator, a fixed OTP
// secret (a restart must check the codes issued before it) and a short code TTL, so
// that payments expire across kills.
func switchConfig(database, httpAddr, smscAddr, smscPassword, token string, ttl time.Duration) string {
	return fmt.Sprintf(`# Written by tools/crashtest.
database:
%s
log:
  level: info
  format: json
http:
  listen: %q
  tokens:
    - name: ops
      token: %q
      role: operator
  max_body_bytes: 65536
  read_timeout: 10s
  write_timeout: 10s
currency: KES
shortcode: %q
country_code: "254"
timezone: Africa/Nairobi
limits:
  min_amount: 1000
  max_amount: 15000000
  daily_max: 30000000
smpp:
  links:
    - name: carrier-a
      address: %q
      system_id: payswitch
      password: %q
      bind: transceiver
      prefixes: []
      tps: 1000
      window: 10
      enquire_link: 30s
      resp_timeout: 5s
  server:
    listen: ""
  demo_smsc:
    listen: ""
    phone_api: ""
otp:
  digits: 6
  ttl: %s
  max_attempts: 3
  max_resends: 3
  resend_interval: 30s
  secret: %q
fraud:
  wrong_codes_lock: 5
  lock_window: 24h
  lock_duration: 1h
  requests_per_minute: 10
messages: {}
`, database, httpAddr, token, shortcode, smscAddr, smscPassword, ttl, otpSecret)
}

// sqliteDatabase is the database block for a SQLite file at path; postgresDatabase for
// the PostgreSQL database at url.
func sqliteDatabase(path string) string  { return fmt.Sprintf("  path: %q\n  synchronous: FULL", path) }
func postgresDatabase(url string) string { return fmt.Sprintf("  url: %q", url) }

const (
	shortcode = "22333"
	// otpSecret is fixed: every start of the switch must check the codes of the ones before.
	otpSecret = "6372617368746573742d6f74702d7365637265742d6b65792d30303031"
)
