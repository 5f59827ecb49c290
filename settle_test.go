package main

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/settlement"
)

// seedMerchantDay books business day 2025-03-10 in Nairobi (UTC+3) for two merchants:
// Mama Mboga takes 15000 and 2000, and the 2000 is reversed; the kiosk takes 700.
func seedMerchantDay(t *testing.T, f *booksFixture) {
	t.Helper()
	f.clock.set(time.Date(2025, 3, 9, 12, 0, 0, 0, time.UTC))
	f.seed(t) // pays Mama Mboga 19000 on the 9th: the day before
	f.account(t, ledger.NewAccount{ID: "M-KIOSK", Type: ledger.Merchant, Name: "Kiosk", Code: "55502"})
	f.clock.set(time.Date(2025, 3, 10, 6, 0, 0, 0, time.UTC))
	f.transfer(t, "pay:10", "W-ALICE", "M-MAMA", 15000, "merchant_payment")
	bob := f.transfer(t, "pay:11", "W-BOB", "M-MAMA", 2000, "merchant_payment")
	if _, err := f.l.Reverse(context.Background(), bob.ID, "pay:11:reverse"); err != nil {
		t.Fatal(err)
	}
	f.transfer(t, "pay:12", "W-ALICE", "M-KIOSK", 700, "merchant_payment")
}

func readSettlement(t *testing.T, path string) [][]string {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	recs, err := csv.NewReader(file).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestSettleCommand(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		f := newBooksFixture(t)
		seedMerchantDay(t, f)
		out := filepath.Join(f.dir, "settlements")
		stdout, stderr, err := runCmd("settle", "-config", f.config, "-date", "2025-03-10", "-out", out)
		if err != nil {
			t.Fatalf("settle: %v\n%s", err, stderr)
		}
		if !strings.Contains(stdout, "KES  payments 3 KES 177.00, reversals 1 KES 20.00, takings KES 157.00, settled KES 157.00") {
			t.Errorf("stdout:\n%s", stdout)
		}
		path := filepath.Join(out, "settlement-2025-03-10.csv")
		recs := readSettlement(t, path)
		want := []string{
			"date,merchant_id,merchant_code,merchant_name,currency,payments,payments_amount,reversals,reversals_amount,takings,settled,transfer_id,status,note,refunds,refunds_amount,store",
			"2025-03-10,M-MAMA,55501,Mama Mboga,KES,2,17000,1,2000,15000,15000,*,settled,,0,0,",
			"2025-03-10,M-KIOSK,55502,Kiosk,KES,1,700,0,0,700,700,*,settled,,0,0,",
		}
		checkRecords(t, recs, want)
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("settlement file: %v, %v; want mode 0600", fi, err)
		}
		settled, err := f.l.Account(context.Background(), "settlement:KES")
		if err != nil || settled.Balance.Posted != 15700 {
			t.Fatalf("settlement account: %+v, %v; want 15700 posted", settled, err)
		}

		// Again: nothing more moves, and the file says the same amounts.
		if _, stderr, err := runCmd("settle", "-config", f.config, "-date", "2025-03-10", "-out", out); err != nil {
			t.Fatalf("second settle: %v\n%s", err, stderr)
		}
		again := readSettlement(t, path)
		for i := range want[1:] {
			want[i+1] = strings.Replace(want[i+1], ",settled,", ",already_settled,", 1)
		}
		checkRecords(t, again, want)
		if again[1][11] != recs[1][11] {
			t.Errorf("rerun names transfer %s, first run %s", again[1][11], recs[1][11])
		}
		if settled, _ := f.l.Account(context.Background(), "settlement:KES"); settled.Balance.Posted != 15700 {
			t.Errorf("after a rerun the settlement account holds %d, want 15700", settled.Balance.Posted)
		}
		if report, err := f.l.Verify(context.Background()); err != nil || !report.OK {
			t.Errorf("ledger verify after settlement: %+v %v", report, err)
		}
	})
}

func TestSettleCommandWhileServeWrites(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		f := newBooksFixture(t)
		seedMerchantDay(t, f)
		stop := f.keepWriting(t, 2*time.Millisecond)
		_, stderr, err := runCmd("settle", "-config", f.config, "-date", "2025-03-10", "-out", filepath.Join(f.dir, "s"))
		stop()
		if err != nil {
			t.Fatalf("settle beside serve: %v\n%s", err, stderr)
		}
		if report, err := f.l.Verify(context.Background()); err != nil || !report.OK {
			t.Errorf("ledger verify: %+v %v", report, err)
		}
	})
}

func TestSettleCommandNamesMerchantsItCouldNotSettle(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		f := newBooksFixture(t)
		seedMerchantDay(t, f)
		if err := f.l.SetStatus(context.Background(), "M-KIOSK", ledger.Frozen); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(f.dir, "s")
		_, stderr, err := runCmd("settle", "-config", f.config, "-date", "2025-03-10", "-out", out)
		if !errors.Is(err, settlement.ErrIncomplete) || exitCode(err) != 1 {
			t.Fatalf("settle with a frozen merchant: %v (exit %d), want ErrIncomplete and exit 1", err, exitCode(err))
		}
		if !strings.Contains(stderr, "merchant 55502 (M-KIOSK): failed: ledger: account not active") {
			t.Errorf("stderr: %q", stderr)
		}
		recs := readSettlement(t, filepath.Join(out, "settlement-2025-03-10.csv"))
		if len(recs) != 3 || recs[1][12] != "settled" || recs[2][12] != "failed" || recs[2][10] != "0" {
			t.Errorf("file: %v", recs)
		}
	})
}

func TestSettleCommandUsage(t *testing.T) {
	f := newBooksFixture(t)
	out := filepath.Join(f.dir, "s")
	missing := newBooksFixture(t)
	os.Remove(filepath.Join(missing.dir, "data", "payswitch.db"))
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no -date", []string{"-config", f.config, "-out", out}, 2, "-date YYYY-MM-DD is required"},
		{"no -out", []string{"-config", f.config, "-date", "2025-03-10"}, 2, "-out DIR is required"},
		{"bad date", []string{"-config", f.config, "-date", "2025-13-01", "-out", out}, 2, "bad date"},
		{"day not over", []string{"-config", f.config, "-date", "2999-01-01", "-out", out}, 1, "business day not over"},
		{"no database", []string{"-config", missing.config, "-date", "2025-03-10", "-out", out}, 1, "settle: database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(append([]string{"settle"}, tt.args...)...)
			if exitCode(err) != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v (exit %d), want exit %d and %q", err, exitCode(err), tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused settle wrote a file")
	}
}

// checkRecords compares CSV records with lines where "*" matches any non-empty field.
func checkRecords(t *testing.T, recs [][]string, want []string) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("%d rows, want %d: %v", len(recs), len(want), recs)
	}
	for i, w := range want {
		fields := strings.Split(w, ",")
		ok := len(fields) == len(recs[i])
		for j := 0; ok && j < len(fields); j++ {
			ok = fields[j] == recs[i][j] || fields[j] == "*" && recs[i][j] != ""
		}
		if !ok {
			t.Errorf("row %d = %s\nwant     %s", i, strings.Join(recs[i], ","), w)
		}
	}
}
