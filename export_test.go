package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

// fixtureClock is the ledger's clock in these tests: it moves only when told to.
type fixtureClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fixtureClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixtureClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// booksFixture is a database as serve keeps it, open as serve would hold it, and a
// config file that points the export, verify and settle commands at it: a SQLite file,
// or, inside pgtest.Both's postgres subtest, a PostgreSQL database (database.url).
type booksFixture struct {
	dir    string
	config string
	db     *store.DB
	l      *ledger.Ledger
	clock  *fixtureClock
}

func newBooksFixture(t *testing.T) *booksFixture {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "data", "payswitch.db")
	where := fmt.Sprintf("path: %q", dbPath)
	var db *store.DB
	var err error
	if pgtest.OnPostgres(t) {
		url := pgtest.URL(t)
		where = fmt.Sprintf("url: %q", url)
		db, err = store.OpenPostgres(context.Background(), url, store.Options{}, ledger.Schema, otp.Schema)
	} else {
		db, err = store.Open(dbPath, store.Options{}, ledger.Schema, otp.Schema)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("database: {%s}\nhttp: {listen: \"127.0.0.1:8080\"}\ncurrency: KES\nshortcode: \"22333\"\ntimezone: Africa/Nairobi\n", where)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &fixtureClock{t: time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)}
	return &booksFixture{dir: dir, config: cfg, db: db, l: ledger.New(db, c.now), clock: c}
}

func (f *booksFixture) account(t *testing.T, a ledger.NewAccount) {
	t.Helper()
	a.Currency = "KES"
	if _, err := f.l.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

func (f *booksFixture) transfer(t *testing.T, key, debit, credit string, amount int64, kind string) ledger.Transfer {
	t.Helper()
	tr, err := f.l.Transfer(context.Background(), ledger.TransferRequest{Key: key, Debit: debit, Credit: credit,
		Amount: amount, PaymentID: strings.ToUpper(strings.ReplaceAll(key, ":", "")), Kind: kind})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return tr
}

// seed opens a cash account, two wallets and a merchant, funds the wallets and pays
// the merchant: 10 journal rows and 2 auth events.
func (f *booksFixture) seed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.l.SystemAccount(ctx, ledger.Cash, "KES", "KES"); err != nil {
		t.Fatal(err)
	}
	f.account(t, ledger.NewAccount{ID: "W-ALICE", Type: ledger.Wallet, Name: "Alice", MSISDN: "254700000001"})
	f.account(t, ledger.NewAccount{ID: "W-BOB", Type: ledger.Wallet, Name: "Bob", MSISDN: "254700000002"})
	f.account(t, ledger.NewAccount{ID: "M-MAMA", Type: ledger.Merchant, Name: "Mama Mboga", Code: "55501"})
	f.transfer(t, "dep:1", "cash:KES", "W-ALICE", 100000, "deposit")
	f.transfer(t, "dep:2", "cash:KES", "W-BOB", 50000, "deposit")
	for _, e := range []string{otp.EventIssued, otp.EventConfirmed} {
		ev := otp.Event{Time: f.clock.now(), PaymentID: "PAY1", MSISDN: "254700000001", Channel: "sms", Event: e}
		if err := f.db.Write(ctx, func(tx store.Tx) error { return otp.RecordEvent(ctx, tx, ev) }); err != nil {
			t.Fatal(err)
		}
	}
	f.transfer(t, "pay:1", "W-ALICE", "M-MAMA", 15000, "merchant_payment")
	f.transfer(t, "pay:2", "W-BOB", "M-MAMA", 2000, "merchant_payment")
	f.transfer(t, "pay:3", "W-BOB", "M-MAMA", 2000, "merchant_payment")
}

// keepWriting books transfers between the two wallets through the fixture's database,
// as serve would, until stop is called; stop returns how many were booked and fails the
// test if any write was refused. With pace 0 it writes flat out; otherwise one transfer
// per pace. SQLite does not queue writers fairly, so a writer that never pauses can keep
// another process from ever taking the write lock: commands that write (settle) are
// tested beside a busy serve, not a saturated one.
func (f *booksFixture) keepWriting(t *testing.T, pace time.Duration) (stop func() int) {
	t.Helper()
	done := make(chan struct{})
	result := make(chan error, 1)
	var tick <-chan time.Time
	if pace > 0 {
		ticker := time.NewTicker(pace)
		t.Cleanup(ticker.Stop)
		tick = ticker.C
	}
	var n int
	go func() {
		for i := 1; ; i++ {
			select {
			case <-done:
				result <- nil
				return
			default:
			}
			if tick != nil {
				select {
				case <-done:
					result <- nil
					return
				case <-tick:
				}
			}
			from, to := "W-ALICE", "W-BOB"
			if i%2 == 0 {
				from, to = to, from
			}
			if _, err := f.l.Transfer(context.Background(), ledger.TransferRequest{Key: "load:" + strconv.Itoa(i),
				Debit: from, Credit: to, Amount: 1, Kind: "transfer"}); err != nil {
				result <- fmt.Errorf("transfer %d: %w", i, err)
				return
			}
			n = i
		}
	}()
	return func() int {
		close(done)
		if err := <-result; err != nil {
			t.Fatalf("the writer was refused while the command ran: %v", err)
		}
		return n
	}
}

// runCmd runs the binary's command line in-process.
func runCmd(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func exitCode(err error) int {
	var ec exitCoder
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return ec.ExitCode()
	}
	return 1
}

func readManifest(t *testing.T, dir string) audit.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, audit.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m audit.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExportCommandWritesAVerifiableExport(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		f := newBooksFixture(t)
		f.seed(t)
		out := filepath.Join(f.dir, "audit")
		stdout, stderr, err := runCmd("export", "-config", f.config, "-out", out)
		if err != nil {
			t.Fatalf("export: %v\n%s", err, stderr)
		}
		if !strings.Contains(stdout, "journal.csv 10 rows (seq 1..10), accounts.csv 4 rows, auth_events.csv 2 rows") {
			t.Errorf("stdout:\n%s", stdout)
		}
		// stderr is not a terminal here: plain progress lines, ending with the summary.
		if !strings.HasPrefix(lastLine(stderr), "export: 10 rows in ") || strings.Contains(stderr, "\r") {
			t.Errorf("stderr:\n%q", stderr)
		}

		stdout, _, err = runCmd("verify", out)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if !strings.HasPrefix(stdout, "OK\n") || !strings.Contains(stdout, "KES          debits KES 1,690.00, credits KES 1,690.00") {
			t.Errorf("verify stdout:\n%s", stdout)
		}
	})
}

func TestExportCommandWhileServeWrites(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		f := newBooksFixture(t)
		f.seed(t)
		stop := f.keepWriting(t, 0)
		out := filepath.Join(f.dir, "audit")
		_, stderr, err := runCmd("export", "-config", f.config, "-out", out)
		booked := stop()
		if err != nil {
			t.Fatalf("export while serve writes: %v\n%s", err, stderr)
		}
		if _, _, err := runCmd("verify", out); err != nil {
			t.Fatalf("verify an export taken while %d transfers were booked: %v", booked, err)
		}
		m := readManifest(t, out)
		if m.Chain.LastSeq < 10 || m.Chain.LastSeq%2 != 0 {
			t.Errorf("export ends at seq %d: want a whole number of transfers, at least the seed's", m.Chain.LastSeq)
		}
	})
}

func TestExportCommandPeriod(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		f := newBooksFixture(t)
		f.seed(t) // 09:00 UTC on 2025-03-10
		f.clock.set(time.Date(2025, 3, 11, 9, 0, 0, 0, time.UTC))
		f.transfer(t, "pay:4", "W-ALICE", "M-MAMA", 500, "merchant_payment")
		out := filepath.Join(f.dir, "march-11")
		_, stderr, err := runCmd("export", "-config", f.config, "-out", out,
			"-from", "2025-03-11T00:00:00+03:00", "-to", "2025-03-12T00:00:00+03:00")
		if err != nil {
			t.Fatalf("export: %v\n%s", err, stderr)
		}
		if _, _, err := runCmd("verify", out); err != nil {
			t.Fatalf("verify a period export: %v", err)
		}
		m := readManifest(t, out)
		if m.Period.From != "2025-03-10T21:00:00.000000Z" || m.Period.To != "2025-03-11T21:00:00.000000Z" ||
			m.Chain.FirstSeq != 11 || m.Chain.LastSeq != 12 {
			t.Errorf("period %+v, chain %+v", m.Period, m.Chain)
		}
	})
}

func TestExportCommandUsage(t *testing.T) {
	f := newBooksFixture(t)
	out := filepath.Join(f.dir, "audit")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no -out", []string{"-config", f.config}, 2, "-out DIR is required"},
		{"bad -from", []string{"-config", f.config, "-out", out, "-from", "yesterday"}, 2, `-from "yesterday"`},
		{"stray argument", []string{"-config", f.config, "-out", out, "now"}, 2, `unexpected argument "now"`},
		{"unknown flag", []string{"-config", f.config, "-out", out, "-fast"}, 1, "flag provided but not defined"},
		{"no config", []string{"-config", filepath.Join(f.dir, "nope.yaml"), "-out", out}, 1, "nope.yaml"},
		{"to before from", []string{"-config", f.config, "-out", out, "-from", "2025-03-11T00:00:00Z", "-to", "2025-03-10T00:00:00Z"}, 1, "empty period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runCmd(append([]string{"export"}, tt.args...)...)
			if exitCode(err) != tt.code {
				t.Errorf("exit code %d, want %d (%v)", exitCode(err), tt.code, err)
			}
			if err == nil || !strings.Contains(err.Error()+stderr, tt.want) {
				t.Errorf("error %v, stderr %q: want %q", err, stderr, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, audit.ManifestFile)); err == nil {
		t.Error("a refused export wrote a manifest")
	}
}

func TestProgressMeter(t *testing.T) {
	start := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		tty   bool
		steps []time.Duration // when each update(i*1000, 4000) arrives, i = 1, 2, ...
		want  string
	}{
		{"lines for logs", false, []time.Duration{time.Second, 5 * time.Second, 6 * time.Second, 8 * time.Second},
			"export: 2000/4000 rows (50.0%), 400 rows/s, 5s left\n" +
				"export: 4000 rows in 8s (500 rows/s)\n"},
		{"a bar on a terminal", true, []time.Duration{50 * time.Millisecond, time.Second, 2 * time.Second},
			"\r[===============               ]  50.0%  2000/4000 rows  2000 rows/s  1s left\x1b[K" +
				"\r[======================        ]  75.0%  3000/4000 rows  1500 rows/s  1s left\x1b[K" +
				"\r[==============================] 100.0%  3000/3000 rows  1500 rows/s  0s left\x1b[K\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			now := start
			p := newProgressMeter(&buf, func() time.Time { return now })
			p.tty = tt.tty
			for i, d := range tt.steps {
				now = start.Add(d)
				p.update(int64(i+1)*1000, 4000)
			}
			// The journal held fewer rows than counted: finish tells the truth.
			if tt.tty {
				p.finish(3000)
			} else {
				p.finish(4000)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("output\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// exportVerified runs the auditor's export of the database at dbPath (with a config of
// its own) and verify on it, fails t unless verify says OK, and returns the export's
// folder, for a test to look into its files.
func exportVerified(t *testing.T, dbPath string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("database: {path: %q}\nhttp: {listen: \"127.0.0.1:8080\"}\ncurrency: KES\nshortcode: \"22333\"\n", dbPath)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "export")
	if _, stderr, err := runCmd("export", "-config", cfg, "-out", out); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	if stdout, stderr, err := runCmd("verify", out); err != nil || !strings.HasPrefix(stdout, "OK\n") {
		t.Fatalf("verify: %v\n%s%s", err, stdout, stderr)
	}
	return out
}
