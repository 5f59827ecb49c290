package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// buildDir holds the payswitch binary the end-to-end tests share.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "loadgen-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// switchBinary builds payswitch from this repository once per test binary.
func switchBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs payswitch serve; skipped with -short")
	}
	buildOnce.Do(func() { builtBin, buildErr = buildSwitch(context.Background(), buildDir) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

var (
	finalLine = regexp.MustCompile(`^payments=(\d+) completed=(\d+) failed=(\d+) payments/s=([0-9.]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+)$`)
	echoLine  = regexp.MustCompile(`^echo_pdus/s=(\d+) mo=(\d+) mt=(\d+) seconds=[0-9.]+ p50_ms=[0-9.]+ p99_ms=[0-9.]+$`)
	rssLine   = regexp.MustCompile(`^serve_rss_mb=[0-9.]+$`)
)

// figures is the final line, read back.
type figures struct{ payments, completed, failed int }

// readOutput checks the shape of loadgen's stdout: the echo line, the final line,
// serve_rss_mb; and returns the final line's counts.
func readOutput(t *testing.T, stdout string) figures {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("stdout has %d lines, want 3 (echo, final, rss):\n%s", len(lines), stdout)
	}
	if m := echoLine.FindStringSubmatch(lines[0]); m == nil {
		t.Errorf("echo line %q does not parse", lines[0])
	} else if m[2] == "0" || m[3] == "0" {
		t.Errorf("echo line %q: no MO or no MT counted", lines[0])
	}
	m := finalLine.FindStringSubmatch(lines[1])
	if m == nil {
		t.Fatalf("final line %q does not parse", lines[1])
	}
	if !rssLine.MatchString(lines[2]) {
		t.Errorf("rss line %q does not parse", lines[2])
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	f := figures{atoi(m[1]), atoi(m[2]), atoi(m[3])}
	if f.completed+f.failed != f.payments {
		t.Errorf("%q: completed + failed != payments", lines[1])
	}
	return f
}

// TestRun runs a tiny load end to end against a real serve process: every payment
// completes and the books match.
func TestRun(t *testing.T) {
	bin := switchBinary(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-bin", bin, "-duration", "2s", "-phones", "20",
		"-concurrency", "8", "-echo-duration", "1s"}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}
	f := readOutput(t, stdout.String())
	if f.completed == 0 || f.failed != 0 {
		t.Errorf("completed=%d failed=%d; want some completed and none failed", f.completed, f.failed)
	}
	if !strings.Contains(stderr.String(), "check: books match what the phones saw") {
		t.Errorf("stderr does not report the checks as passed")
	}
	// The writer's share of the load, from the switch's /metrics: some groups ran.
	if !regexp.MustCompile(`store writer during the load: busy \d+% .* [1-9]\d* groups/s of \d+\.\d operations`).MatchString(stderr.String()) {
		t.Errorf("stderr does not report the store writer's work")
	}
}

// TestRunStopsEarly stops a long run once the load has begun, as Ctrl-C does: the run
// still prints its figures and passes its checks.
func TestRunStopsEarly(t *testing.T) {
	bin := switchBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &lineWatch{match: regexp.MustCompile(`progress: .* confirmed=[1-9]`), fire: cancel}
	err := run(ctx, []string{"-bin", bin, "-duration", "10m", "-phones", "10", "-concurrency", "4",
		"-echo-duration", "1s", "-progress", "100ms"}, &stdout, stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}
	if f := readOutput(t, stdout.String()); f.completed == 0 {
		t.Errorf("no payment completed before the stop; the test wanted some")
	}
	if !strings.Contains(stderr.String(), "stopped early") {
		t.Errorf("stderr does not say the load stopped early")
	}
}

// lineWatch is a writer that calls fire once what was written matches.
type lineWatch struct {
	mu    sync.Mutex // guards buf and fired
	buf   bytes.Buffer
	match *regexp.Regexp
	fire  func()
	fired bool
}

func (w *lineWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if !w.fired && w.match.Match(w.buf.Bytes()) {
		w.fired = true
		w.fire()
	}
	return len(b), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    func(o options) bool
	}{
		{name: "defaults", want: func(o options) bool {
			return o.phones == 4000 && o.concurrency == 160 && o.window == linkWindow && o.echoDuration > 0 && o.synchronous == "FULL"
		}},
		{name: "concurrency above phones is phones", args: []string{"-phones", "5", "-concurrency", "50"},
			want: func(o options) bool { return o.concurrency == 5 }},
		{name: "no phones", args: []string{"-phones", "0"}, wantErr: "at least 1"},
		{name: "echo without a phase", args: []string{"-echo", "-echo-duration", "0"}, wantErr: "-echo needs"},
		{name: "bad synchronous", args: []string{"-synchronous", "OFF"}, wantErr: "FULL or NORMAL"},
		{name: "extra argument", args: []string{"serve"}, wantErr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) = %v; want an error with %q", tt.args, err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			case !tt.want(o):
				t.Errorf("parseFlags(%q) = %+v", tt.args, o)
			}
		})
	}
}
