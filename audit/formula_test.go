package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/internal/csvcell"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

// formulaNames are account names that a spreadsheet would run, one per character that
// starts a formula, and one that starts with the quote itself.
var formulaNames = []string{`=HYPERLINK("http://x","a")`, "+254700000009", "-2+3", "@SUM(A1)", "\tTabbed", "\rReturned", "'Quoted"}

// seedFormulas adds to seed's books a merchant named after each of formulaNames, each
// paid once, and a code event whose detail starts a formula.
func seedFormulas(tb testing.TB, b *books) {
	tb.Helper()
	seed(tb, b)
	for i, name := range formulaNames {
		id := "M-F" + strconv.Itoa(i)
		if _, err := b.l.CreateAccount(ctx, ledger.NewAccount{ID: id, Type: ledger.Merchant, Currency: "KES",
			Name: name, Code: "5560" + strconv.Itoa(i)}); err != nil {
			tb.Fatal(err)
		}
		b.transfer(tb, "F"+strconv.Itoa(i), "W-ALICE", id, 100, "PAYF00000"+strconv.Itoa(i), "merchant_payment")
	}
	b.event(tb, otp.Event{Time: b.clock.now(), PaymentID: "PAYF000000", MSISDN: "254700000001", Channel: "sms",
		Event: otp.EventWrong, Detail: "=1+1"})
}

func TestExportQuotesFormulaCells(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	seedFormulas(t, b)
	dir := filepath.Join(t.TempDir(), "audit")
	m := mustExport(t, b.readOnly(t), dir, audit.Options{})
	if m.Format != "payswitch-audit/2" {
		t.Fatalf("format %q", m.Format)
	}

	names := map[string]string{}
	for _, rec := range readCSV(t, filepath.Join(dir, audit.AccountsFile))[1:] {
		names[rec[0]] = rec[2]
		for j, cell := range rec[:7] {
			if csvcell.Risky(cell) {
				t.Errorf("accounts.csv %s: %d %q starts a formula", rec[0], j, cell)
			}
		}
		if rec[0] == "cash:KES" && !strings.HasPrefix(rec[8], "-") {
			t.Errorf("cash:KES closing_balance %q: a negative number must stay a plain number", rec[8])
		}
	}
	for i, name := range formulaNames {
		got := names["M-F"+strconv.Itoa(i)]
		if got != "'"+name || csvcell.Value(got) != name {
			t.Errorf("name of M-F%d written %q, want %q", i, got, "'"+name)
		}
	}
	events := readCSV(t, filepath.Join(dir, audit.AuthEventsFile))
	if last := events[len(events)-1]; last[5] != "'=1+1" {
		t.Errorf("auth event detail written %q, want '=1+1", last[5])
	}
	// The journal's cells need no quote, so its hashes are the ledger's.
	_, head, err := b.l.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Chain.LastHash != head {
		t.Errorf("export ends at %s, the ledger at %s", m.Chain.LastHash, head)
	}
	mustVerify(t, dir)
	runPythonChecker(t, dir, true)

	// A risky cell put back after the export fails verify, even with the file's
	// SHA-256 made to match again; so does a changed journal row.
	unquoted := copyDir(t, dir)
	editCSV(t, unquoted, audit.AccountsFile, func(recs [][]string) [][]string {
		for _, rec := range recs {
			if rec[0] == "M-F0" {
				rec[2] = csvcell.Value(rec[2])
			}
		}
		return recs
	})
	fixSHA256(t, unquoted, audit.AccountsFile)
	_, err = audit.Verify(unquoted)
	if err == nil || !strings.Contains(err.Error(), `name "=HYPERLINK`) || !strings.Contains(err.Error(), "run as a formula") {
		t.Fatalf("verify of an unquoted name: %v", err)
	}
	runPythonChecker(t, unquoted, false)

	tampered := copyDir(t, dir)
	editCSV(t, tampered, audit.JournalFile, func(recs [][]string) [][]string { recs[len(recs)-1][6] = "101"; return recs })
	if _, err := audit.Verify(tampered); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("verify of a changed journal row: %v", err)
	}
	runPythonChecker(t, tampered, false)
}

// TestVerifyReadsFormat1 checks that an export from before text cells were quoted,
// risky cells and all, still verifies: the hash rule did not change.
func TestVerifyReadsFormat1(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	seedFormulas(t, b)
	dir := filepath.Join(t.TempDir(), "audit")
	mustExport(t, b.readOnly(t), dir, audit.Options{})
	for _, name := range []string{audit.AccountsFile, audit.AuthEventsFile} {
		editCSV(t, dir, name, func(recs [][]string) [][]string {
			for _, rec := range recs {
				for j := range rec {
					rec[j] = csvcell.Value(rec[j])
				}
			}
			return recs
		})
		fixSHA256(t, dir, name)
	}
	editManifest(t, dir, func(m map[string]any) { m["format"] = "payswitch-audit/1" })
	mustVerify(t, dir)
	runPythonChecker(t, dir, true)
}

// TestExportRefusesAJournalCellThatNeedsAQuote: the ledger's Go API accepts an account
// id such as "-X", which the switch never makes. Its journal cells would need the quote,
// which the ledger's hash does not cover, so the export stops rather than write a file
// that cannot verify.
func TestExportRefusesAJournalCellThatNeedsAQuote(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	seed(t, b)
	if _, err := b.l.CreateAccount(ctx, ledger.NewAccount{ID: "-X", Type: ledger.Wallet, Currency: "KES", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	b.transfer(t, "dash", "W-ALICE", "-X", 100, "", "transfer")
	dir := filepath.Join(t.TempDir(), "audit")
	_, err := audit.Export(ctx, b.readOnly(t), dir, audit.Options{})
	if err == nil || !strings.Contains(err.Error(), `account_id "-X"`) || !strings.Contains(err.Error(), "would not verify") {
		t.Fatalf("export: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, audit.ManifestFile)); !os.IsNotExist(err) {
		t.Fatalf("a manifest was written: %v", err)
	}
}

// fixSHA256 records name's new SHA-256 in the manifest, as someone editing the files
// would.
func fixSHA256(tb testing.TB, dir, name string) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(b)
	editManifest(tb, dir, func(m map[string]any) {
		m["files"].(map[string]any)[name].(map[string]any)["sha256"] = hex.EncodeToString(sum[:])
	})
}

// runPythonChecker runs the Python script of docs/AUDIT.md on dir and checks that it
// passes (ok) or fails.
func runPythonChecker(tb testing.TB, dir string, ok bool) {
	tb.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		tb.Log("python3 not found: the checker of docs/AUDIT.md is not run")
		return
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "AUDIT.md"))
	if err != nil {
		tb.Fatal(err)
	}
	_, after, found := strings.Cut(string(doc), "The whole verification in Python 3")
	_, after, found2 := strings.Cut(after, "```python\n")
	script, _, found3 := strings.Cut(after, "```")
	if !found || !found2 || !found3 {
		tb.Fatal("docs/AUDIT.md has no Python checker where expected")
	}
	path := filepath.Join(tb.TempDir(), "check.py")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command(python, path, dir).CombinedOutput()
	switch {
	case ok && err != nil:
		tb.Fatalf("the Python checker fails on %s: %v\n%s", dir, err, out)
	case !ok && err == nil:
		tb.Fatalf("the Python checker passes %s:\n%s", dir, out)
	case ok && !strings.HasPrefix(string(out), "OK"):
		tb.Fatalf("the Python checker printed %s", out)
	}
}
