package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// A backup taken while payments keep being booked is written 0600, checked, says what it
// holds up to, and the writer is never refused meanwhile.
func TestBackupWhileBooking(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	stop := f.keepWriting(t, 0)
	out := filepath.Join(f.dir, "backups", "b1.db")
	stdout, stderr, err := runCmd("backup", "-config", f.config, "-out", out)
	booked := stop()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	if booked == 0 {
		t.Error("nothing was booked while the backup ran")
	}
	for _, want := range []string{"OK backup " + out, "journal    last seq ", "up to      2025-03-10T", "debits KES "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	for _, side := range []string{"-wal", "-shm", ".partial"} {
		if fileExists(out + side) {
			t.Errorf("%s left beside the backup", out+side)
		}
	}
	// The copy checks out on its own, like any restore of it would.
	rep, err := checkCopy(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LastSeq < 10 || !strings.Contains(stdout, "last seq "+strconv.FormatInt(rep.LastSeq, 10)+", hash "+rep.LastHash) {
		t.Errorf("backup holds seq %d %s; stdout:\n%s", rep.LastSeq, rep.LastHash, stdout)
	}
}

func TestBackupRefusesAnExistingFile(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	out := filepath.Join(f.dir, "b.db")
	if err := os.WriteFile(out, []byte("an earlier backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCmd("backup", "-config", f.config, "-out", out)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over a file: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "an earlier backup" {
		t.Error("the existing file was changed")
	}
	target, check := victim(t)
	link := filepath.Join(f.dir, "c.db")
	if err := os.Symlink(target, link+".partial"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd("backup", "-config", f.config, "-out", link); err == nil {
		t.Error("backup through a planted .partial link succeeded")
	}
	check()
}

// A copy whose books do not add up is refused and removed.
func TestBackupRefusesBadBooks(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	// Change a balance behind the ledger's back, as a bug or an intruder would.
	if err := f.db.Write(context.Background(), func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), "UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = 'W-BOB'")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "bad.db")
	_, _, err := runCmd("backup", "-config", f.config, "-out", out)
	if err == nil || !strings.Contains(err.Error(), "failed its check") {
		t.Fatalf("backup of bad books: %v", err)
	}
	if fileExists(out) || fileExists(out+".partial") {
		t.Error("a copy that failed its check was left")
	}
}

// TestBuildLargeDatabase builds a large database for measuring backups (README's
// "Backups and disaster recovery"): PAYSWITCH_BIGDB=FILE PAYSWITCH_BIGDB_TRANSFERS=N
// go test -run TestBuildLargeDatabase -timeout 1h . writes N ledger transfers (wallet to
// merchant, through the ledger's batch API: the ledger's tables, which are most of a
// database's size, without the payments' other rows) into FILE with serve's schemas.
// Skipped unless PAYSWITCH_BIGDB is set.
func TestBuildLargeDatabase(t *testing.T) {
	path := os.Getenv("PAYSWITCH_BIGDB")
	if path == "" {
		t.Skip("set PAYSWITCH_BIGDB=FILE to build a large database")
	}
	n, _ := strconv.Atoi(os.Getenv("PAYSWITCH_BIGDB_TRANSFERS"))
	if n <= 0 {
		n = 1_000_000
	}
	ctx := context.Background()
	db, err := store.Open(path, store.Options{}, ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema, smpp.GatewaySchema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := ledger.New(db, nil)
	if _, err := l.SystemAccount(ctx, ledger.Cash, "KES", "KES"); err != nil {
		t.Fatal(err)
	}
	const wallets, merchants = 10000, 100
	for i := range merchants {
		if _, err := l.CreateAccount(ctx, ledger.NewAccount{ID: fmt.Sprintf("M-BIG-%d", i), Type: ledger.Merchant, Currency: "KES",
			Name: fmt.Sprintf("Till %d", i), Code: strconv.Itoa(80000 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	var batch []ledger.TransferRequest
	flush := func() {
		if _, errs := l.TransferBatch(ctx, batch); errors.Join(errs...) != nil {
			t.Fatal(errors.Join(errs...))
		}
		batch = batch[:0]
	}
	for i := range wallets {
		id := fmt.Sprintf("W-BIG-%d", i)
		if _, err := l.CreateAccount(ctx, ledger.NewAccount{ID: id, Type: ledger.Wallet, Currency: "KES",
			Name: fmt.Sprintf("Wallet %d", i), MSISDN: fmt.Sprintf("2547%08d", 20_000_000+i)}); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, ledger.TransferRequest{Key: "bigdep:" + id, Debit: "cash:KES", Credit: id, Amount: 1 << 40, Kind: "deposit"})
		if len(batch) == 500 {
			flush()
		}
	}
	for i := range n {
		batch = append(batch, ledger.TransferRequest{Key: fmt.Sprintf("bigpay:%d", i), Debit: fmt.Sprintf("W-BIG-%d", i%wallets),
			Credit: fmt.Sprintf("M-BIG-%d", i%merchants), Amount: int64(1000 + i%50000), PaymentID: fmt.Sprintf("BIG%07d", i),
			Kind: "merchant_payment"})
		if len(batch) == 500 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}
