package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/store"
	"github.com/payswitch/payswitch/tools/smscsim"
)

// The fault tests put the database on a filesystem they control (a small tmpfs, an ext4
// image on a loop device) and break it under a running switch: full, then read-only.
// Mounting needs root; they skip without it, and CI runs them as root.
//
// What "recovers" means differs. A full disk is a condition that passes: once space is
// freed the same process takes writes again, without a restart. A filesystem that turned
// read-only under the switch (ext4 does that after a disk error) needs the operator:
// stop the switch, repair the filesystem (fsck), mount it read-write, start the switch.
// In both, whatever the switch acknowledged before or during the fault is still there
// afterwards, and whatever it did not acknowledge (an MO refused with a temporary error)
// comes again from the SMSC and completes.

func TestFullDiskDegradesAndRecoversWithoutRestart(t *testing.T) {
	for _, fs := range []struct {
		name  string
		mount func(t *testing.T) string
	}{
		{"tmpfs", func(t *testing.T) string { return mountTmpfs(t, 16<<20) }},
		{"ext4", func(t *testing.T) string { return mountExt4(t, 32<<20).dir }},
	} {
		t.Run(fs.name, func(t *testing.T) {
			dir := fs.mount(t)
			log := &logBuffer{}
			s := startDurableSwitch(t, dir, log)
			w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
			s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
			a := s.phone(alice)
			s.deposit(w.ID, 100000, "CASHIN-0")
			a.expect("deposited")

			// Fill the disk, then write until a write fails: SQLite may still have room in
			// pages it already owns, so the first failure comes when it needs a new one.
			filler := fill(t, dir)
			acked, failedRef := int64(100000), ""
			for i := 1; failedRef == ""; i++ {
				if i > 500 {
					t.Fatal("500 deposits committed on a full disk")
				}
				ref := fmt.Sprintf("CASHIN-%d", i)
				var e apiError
				switch e.Status = s.call("POST", "/api/v1/deposits", opsToken,
					map[string]any{"account": w.ID, "amount": 100, "reference": ref}, &e); e.Status {
				case http.StatusCreated:
					acked += 100
				case http.StatusServiceUnavailable:
					failedRef = ref
					if e.Error.Code != "database_unavailable" || !strings.Contains(e.Error.Message, "(full)") {
						t.Fatalf("deposit on a full disk: %+v", e)
					}
				default:
					t.Fatalf("deposit on a full disk: %+v", e)
				}
			}
			s.expectDegraded("full")
			// Reads go on: operators can look while the disk is full.
			if b := s.account(w.ID).Balance; b.Posted != acked {
				t.Fatalf("balance while full = %+v, want %d acknowledged", b, acked)
			}
			a.sendRefused("PAY 55501 150")

			// Free the space: the same process takes writes again.
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			s.waitHealthy()
			a.send(codeIn(t, a.expectEventually("KES 150.00", "Never share")))
			acked -= 15000
			a.expectEventually("confirmed", fmt.Sprintf("KES %s", money(acked)))
			// The refused deposit, retried with its reference, is booked once.
			s.deposit(w.ID, 100, failedRef)
			s.deposit(w.ID, 100, failedRef)
			acked += 100
			s.expectLedger(w.ID, acked)
			s.expectFaultLoggedOnce(log, "full", true)

			// And it is all on disk: a restart finds the same.
			s.stop()
			s.startDurable(log)
			s.expectLedger(w.ID, acked)
		})
	}
}

func TestFilesystemTurnedReadOnlyUnderServe(t *testing.T) {
	m := mountExt4(t, 32<<20)
	log := &logBuffer{}
	s := startDurableSwitch(t, m.dir, log)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := s.phone(alice)
	acked := int64(0)
	for i := range 5 {
		s.deposit(w.ID, 20000, fmt.Sprintf("CASHIN-%d", i))
		acked += 20000
	}

	// The kernel finds a disk error and remounts the filesystem read-only
	// (errors=remount-ro); `mount -o remount,abort` does exactly what it does then,
	// with the switch's files open for writing.
	m.abort()
	var e apiError
	if e.Status = s.call("POST", "/api/v1/deposits", opsToken,
		map[string]any{"account": w.ID, "amount": 100, "reference": "CASHIN-RO"}, &e); e.Status != http.StatusServiceUnavailable ||
		e.Error.Code != "database_unavailable" || !strings.Contains(e.Error.Message, "(read-only)") {
		t.Fatalf("deposit on a read-only filesystem: %+v", e)
	}
	s.expectDegraded("read-only")
	if b := s.account(w.ID).Balance; b.Posted != acked {
		t.Fatalf("balance while read-only = %+v, want %d", b, acked)
	}
	a.sendRefused("PAY 55501 150")

	// The operator stops the switch, repairs the filesystem and starts it again. The
	// SMSC still holds the MO it could not deliver, and delivers it to the new process.
	s.stop()
	m.repair()
	s.startDurable(log)
	if code, h := s.health(); code != http.StatusOK || !h.OK {
		t.Fatalf("healthz after the repair: %d %+v", code, h)
	}
	// The redelivered MO may be served before this test looks: wait for its code, and
	// find its hold, and nothing else, beside what was acknowledged.
	code := codeIn(t, a.expectEventually("KES 150.00", "Never share"))
	s.expectBalance(w.ID, acked, 15000)
	a.send(code)
	acked -= 15000
	a.expectEventually("confirmed", fmt.Sprintf("KES %s", money(acked)))
	s.expectLedger(w.ID, acked)
	s.expectFaultLoggedOnce(log, "read-only", false)
}

// TestServeRefusesAReadOnlyOrFullDisk: on a filesystem that is mounted read-only (by
// mistake, or by a kernel that found errors at boot) or full, the database cannot be
// served. Serve stops with a message that names the database and the fault, and starts,
// with everything it had, once the disk is fixed.
func TestServeRefusesAReadOnlyOrFullDisk(t *testing.T) {
	for _, c := range []struct {
		name      string
		breakDisk func(t *testing.T, dir string) (fix func())
		want      string
	}{
		{"read-only", func(t *testing.T, dir string) func() {
			remount(t, dir, syscall.MS_RDONLY)
			return func() { remount(t, dir, 0) }
		}, "is on a read-only filesystem"},
		{"full", func(t *testing.T, dir string) func() {
			filler := fill(t, dir)
			return func() { os.Remove(filler) }
		}, "the disk is full"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := mountTmpfs(t, 16<<20)
			s := startDurableSwitch(t, dir, &logBuffer{})
			w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
			s.deposit(w.ID, 100000, "CASHIN-0")
			s.stop()

			fix := c.breakDisk(t, dir)
			cfg := s.config()
			cfg.Database.Synchronous = "FULL"
			_, err := startApp(context.Background(), cfg, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("serve on a %s disk: %v, want an error naming the database and %q", c.name, err, c.want)
			}
			fix()
			s.startDurable(&logBuffer{})
			s.expectLedger(w.ID, 100000)
		})
	}
}

// startDurableSwitch starts a switch with its database in dir, durable as shipped
// (synchronous FULL, not the NORMAL that the other tests use for speed), its log in log.
func startDurableSwitch(t *testing.T, dir string, log *logBuffer) *testSwitch {
	t.Helper()
	sim, err := smscsim.Start(smscsim.Config{Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": "pw"},
		Log: zerolog.Nop(), RetryDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	s := &testSwitch{t: t, dir: dir, sim: sim, ttl: "5m"}
	s.startDurable(log)
	t.Cleanup(func() {
		if s.app != nil {
			s.app.Close()
		}
	})
	return s
}

func (s *testSwitch) startDurable(log *logBuffer) {
	s.t.Helper()
	cfg := s.config()
	cfg.Database.Synchronous = "FULL"
	a, err := startApp(context.Background(), cfg, zerolog.New(log).Level(zerolog.InfoLevel))
	if err != nil {
		s.t.Fatal(err)
	}
	s.app, s.base = a, "http://"+a.httpAddr
	s.waitBound()
}

// dbHealth is the database part of /healthz.
type dbHealth struct {
	OK    bool
	Fault string
	Error string
}

func (s *testSwitch) health() (int, dbHealth) {
	s.t.Helper()
	resp, err := http.Get(s.base + "/healthz")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct{ Database dbHealth }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		s.t.Fatalf("healthz body: %v", err)
	}
	return resp.StatusCode, h.Database
}

// expectDegraded checks that /healthz answers 503 naming fault, and that a write through
// the API is refused with 503, a JSON error naming it and a Retry-After.
func (s *testSwitch) expectDegraded(fault string) {
	s.t.Helper()
	if code, h := s.health(); code != http.StatusServiceUnavailable || h.OK || h.Fault != fault || h.Error == "" {
		s.t.Fatalf("healthz = %d %+v, want 503 with fault %q", code, h, fault)
	}
	body, _ := json.Marshal(map[string]string{"type": "wallet", "msisdn": bob, "name": "Bob"})
	req, _ := http.NewRequest("POST", s.base+"/api/v1/accounts", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+opsToken)
	// Refused, not left hanging: well within the API's own 10 s timeout.
	resp, err := (&http.Client{Timeout: 8 * time.Second}).Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusServiceUnavailable || e.Error.Code != "database_unavailable" ||
		!strings.Contains(e.Error.Message, "("+fault+")") || resp.Header.Get("Retry-After") == "" {
		s.t.Fatalf("open account while %s = %d %+v (Retry-After %q)", fault, resp.StatusCode, e, resp.Header.Get("Retry-After"))
	}
	if m := s.metric("payswitch_database_writable"); m != "0" {
		s.t.Fatalf("payswitch_database_writable = %q while %s, want 0", m, fault)
	}
}

func (s *testSwitch) waitHealthy() {
	s.t.Helper()
	eventually(s.t, "healthz to answer 200", func() bool {
		code, h := s.health()
		return code == http.StatusOK && h.OK
	})
	if m := s.metric("payswitch_database_writable"); m != "1" {
		s.t.Fatalf("payswitch_database_writable = %q after recovery, want 1", m)
	}
}

// expectLedger checks the trial balance and the wallet's posted balance, which is the
// sum of every acknowledged movement.
func (s *testSwitch) expectLedger(wallet string, posted int64) {
	s.t.Helper()
	s.expectBalance(wallet, posted, 0)
}

// expectBalance checks the trial balance and the wallet's posted and held amounts.
func (s *testSwitch) expectBalance(wallet string, posted, held int64) {
	s.t.Helper()
	var tb struct{ Balanced bool }
	if code := s.call("GET", "/api/v1/ledger/trial-balance", auditToken, nil, &tb); code != http.StatusOK || !tb.Balanced {
		s.t.Fatalf("trial balance: %d %+v", code, tb)
	}
	if b := s.account(wallet).Balance; b.Posted != posted || b.Held != held {
		s.t.Fatalf("wallet = %+v, want %d posted and %d held", b, posted, held)
	}
}

// expectFaultLoggedOnce checks that the switch said what was wrong once, however many
// writes failed meanwhile, and (when recovered) once that it was over.
func (s *testSwitch) expectFaultLoggedOnce(log *logBuffer, fault string, recovered bool) {
	s.t.Helper()
	if n := log.count(`"level":"error"`, `"message":"database cannot be written`, `"fault":"`+fault+`"`); n != 1 {
		s.t.Fatalf("the %s fault was logged %d times, want once:\n%s", fault, n, log)
	}
	want := 0
	if recovered {
		want = 1
	}
	if n := log.count(`"message":"database writable again"`, `"fault":"`+fault+`"`); n != want {
		s.t.Fatalf("recovery from %s logged %d times, want %d:\n%s", fault, n, want, log)
	}
	s.t.Logf("log lines at error level: %d", log.count(`"level":"error"`))
}

// sendRefused sends an MO that the switch cannot persist, and waits until the SMSC has
// offered it again: the switch answered with a temporary error, so the message is not
// lost, and nothing came back to the phone. Before the fault the tests send no message
// that asks for a delivery receipt, so every deliver_sm counted is this MO.
func (p *phone) sendRefused(text string) {
	p.t.Helper()
	l := p.s.app.links[0]
	before := l.Stats().Received
	p.send(text)
	eventually(p.t, "the SMSC to offer the MO again", func() bool { return l.Stats().Received >= before+2 })
	for _, m := range p.s.sim.MTs(p.msisdn) {
		if strings.Contains(m.Text, "Never share") {
			p.t.Fatalf("a code was sent for an MO that was not persisted: %q", m.Text)
		}
	}
}

// apiError is a failed API call's status and error body.
type apiError struct {
	Status int
	Error  struct{ Code, Message string }
}

// money formats minor units as the SMS texts do (1234500 is 12,345.00).
func money(minor int64) string {
	s := fmt.Sprintf("%d", minor/100)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return fmt.Sprintf("%s.%02d", s, minor%100)
}

// eventually polls cond until it holds, or fails the test after ten seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logBuffer collects a switch's log lines for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count is how many log lines contain every want.
func (l *logBuffer) count(want ...string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			n++
		}
	}
	return n
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("fault tests mount filesystems, which needs root (CI runs as root)")
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted at cleanup.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// remount changes a mount's flags (syscall.MS_RDONLY, or 0 for read-write); it fails
// while a file there is open for writing.
func remount(t *testing.T, dir string, flags uintptr) {
	t.Helper()
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|flags, ""); err != nil {
		t.Fatalf("remount %s: %v", dir, err)
	}
}

// fill writes a file in dir until the filesystem has no room left, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10, 1} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	return path
}

// ext4Mount is an ext4 filesystem in an image file, attached to a loop device and
// mounted with errors=remount-ro, as a production data disk usually is.
type ext4Mount struct {
	t   *testing.T
	img string
	dev string
	dir string
}

// mountExt4 makes and mounts an ext4 filesystem of size bytes; the mount and the loop
// device go at cleanup, whatever the test did to them.
func mountExt4(t *testing.T, size int64) *ext4Mount {
	t.Helper()
	requireRoot(t)
	for _, tool := range []string{"mkfs.ext4", "losetup", "mount", "umount", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	tmp := t.TempDir()
	m := &ext4Mount{t: t, img: filepath.Join(tmp, "disk.img"), dir: filepath.Join(tmp, "mnt")}
	if err := os.Mkdir(m.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(m.img, size); err != nil {
		t.Fatal(err)
	}
	m.must("mkfs.ext4", "-q", "-F", "-m", "0", m.img) // -m 0: no blocks kept for root
	out, err := exec.Command("losetup", "--find", "--show", m.img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: losetup: %v: %s", err, out)
	}
	m.dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", m.dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", m.dev, err, out)
		}
	})
	t.Cleanup(func() {
		if m.mounted() {
			if out, err := exec.Command("umount", "-l", m.dir).CombinedOutput(); err != nil {
				t.Errorf("umount -l %s: %v: %s", m.dir, err, out)
			}
		}
	})
	m.mount()
	return m
}

func (m *ext4Mount) must(name string, args ...string) {
	m.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		m.t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func (m *ext4Mount) mount() {
	m.t.Helper()
	m.must("mount", "-t", "ext4", "-o", "errors=remount-ro", m.dev, m.dir)
}

func (m *ext4Mount) mounted() bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	return strings.Contains(string(b), " "+m.dir+" ")
}

// abort makes the filesystem read-only under whoever has files open on it: ext4 aborts
// its journal and, mounted errors=remount-ro, refuses every write from then on with
// EROFS while reads go on, as after a real disk error.
func (m *ext4Mount) abort() {
	m.t.Helper()
	m.must("mount", "-o", "remount,abort", m.dir)
}

// repair is what the operator does after abort: unmount, fsck, mount read-write.
func (m *ext4Mount) repair() {
	m.t.Helper()
	m.must("umount", m.dir)
	// e2fsck exits 1 when it corrected errors, which is what it is here for.
	if out, err := exec.Command("e2fsck", "-f", "-y", m.dev).CombinedOutput(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() > 1 {
			m.t.Fatalf("e2fsck %s: %v: %s", m.dev, err, out)
		}
	}
	m.mount()
}

// metric is the value of an unlabelled metric in /metrics, "" when it is absent.
func (s *testSwitch) metric(name string) string {
	s.t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestBusyDatabaseFaultIsLoggedOnce: another process holds SQLite's write lock (a stuck
// backup). Every check while it does says busy, the log says it once, and once more
// when it is over.
func TestBusyDatabaseFaultIsLoggedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := &logBuffer{}
	w := newDBWatch(db, path, zerolog.New(log), prometheus.NewRegistry())
	check := func(timeout time.Duration) store.Fault {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		f, _ := w.check(ctx)
		return f
	}
	if f := check(3 * time.Second); f != "" {
		t.Fatalf("a free database: %q", f)
	}

	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	if _, err := other.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if f := check(50 * time.Millisecond); f != store.FaultBusy {
			t.Fatalf("while another process holds the write lock: %q", f)
		}
	}
	if _, err := other.Exec("ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if f := check(10 * time.Second); f != "" {
		t.Fatalf("once the lock is released: %q", f)
	}
	if n := log.count(`"message":"database cannot be written`, `"fault":"busy"`); n != 1 {
		t.Fatalf("busy logged %d times:\n%s", n, log)
	}
	if n := log.count(`"message":"database writable again"`, `"fault":"busy"`); n != 1 {
		t.Fatalf("recovery logged %d times:\n%s", n, log)
	}
}
