package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/seal"
	"github.com/payswitch/payswitch/internal/timeid"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/sales"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/webhook"
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

// TestBuildLargeDatabase builds a large database for measuring backups and restores
// (README's "Backups and disaster recovery"):
//
//	PAYSWITCH_BIGDB=FILE [PAYSWITCH_BIGDB_PAYMENTS=N] go test -run TestBuildLargeDatabase -timeout 3h .
//
// writes N completed SMS merchant payments (default 1,000,000) into FILE, a new file
// with serve's schemas, with the rows a real one leaves in every table (see bigDB.payment;
// TestLargeDatabasePaymentsAreShapedLikeRealOnes holds the builder to them).
// PAYSWITCH_BIGDB_TRANSFERS=N writes N bare ledger transfers instead, wallet to
// merchant through the ledger's batch API, as the builder did before it wrote payments.
// Skipped unless PAYSWITCH_BIGDB is set.
func TestBuildLargeDatabase(t *testing.T) {
	path := os.Getenv("PAYSWITCH_BIGDB")
	if path == "" {
		t.Skip("set PAYSWITCH_BIGDB=FILE to build a large database")
	}
	if fileExists(path) {
		t.Fatalf("%s exists: the builder writes a new file", path)
	}
	if s := os.Getenv("PAYSWITCH_BIGDB_TRANSFERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PAYSWITCH_BIGDB_TRANSFERS=%q: want a positive number", s)
		}
		buildLargeTransfers(t, path, n)
		return
	}
	n := 1_000_000
	if s := os.Getenv("PAYSWITCH_BIGDB_PAYMENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("PAYSWITCH_BIGDB_PAYMENTS=%q: want a positive number", s)
		}
	}
	started := time.Now()
	shape := bigShapeFor(n, started)
	b := newBigDB(t, path, shape)
	b.openAccounts()
	b.deposit()
	b.pay(func(done int) {
		if done%100_000 == 0 {
			t.Logf("%d payments after %s", done, time.Since(started).Round(time.Second))
		}
	})
	if err := b.db.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d payments by %d wallets to %d tills, from %s to %s, built in %s",
		n, shape.wallets, shape.merchants, shape.from.Format(time.RFC3339), shape.to.Format(time.RFC3339),
		time.Since(started).Round(time.Second))
}

// bigShape is what bigDB writes: payments made by wallets to merchants' tills over
// [from, to), after the accounts are opened and every wallet funded by a deposit in the
// hour before from.
type bigShape struct {
	payments, wallets, merchants int
	from, to                     time.Time
}

// bigShapeFor spreads n payments over the 30 days before end, about ten a wallet (up to
// 100,000 wallets), from a hundred wallets a till.
func bigShapeFor(n int, end time.Time) bigShape {
	wallets := min(max(n/10, 1), 100_000)
	return bigShape{payments: n, wallets: wallets, merchants: max(wallets/100, 1),
		from: end.Add(-30 * 24 * time.Hour), to: end}
}

// The builder's constants, as the switch that made such payments would have them.
const (
	bigCurrency  = "KES"
	bigShortcode = "22333"
	bigLink      = "carrier-a"                // the SMPP link the messages went out on
	bigDeposit   = 100_000_000                // each wallet's deposit: KES 1,000,000.00
	bigCodeTTL   = 5 * time.Minute            // otp.ttl
	bigChunk     = 1000                       // payments, accounts or deposits per store.Write
	bigMaxVars   = 30_000                     // bound parameters an INSERT statement, under SQLite's 32,766
	bigSealLabel = "payswitch outbox seal v1" // outbox.NewSealed's: code texts sealed as the outbox seals them
)

// bigDB writes payments as the switch leaves them, in bulk. It is a test fixture
// builder, so it writes the rows directly: the ledger's own operations book the money
// (Tx.Hold and Tx.Post, as the engine does: the holds, transfers, entries and balances,
// with the journal's hash chain), and the other tables get their rows by multi-row
// INSERTs at the end of each store.Write, in the shapes the engine, otp and the outbox
// write them (a payment already through: its code used, its messages sent and their
// delivery receipts in). Only one goroutine uses a bigDB, and any error ends the test,
// so its Write functions may change the builder's memory (a store.Write function may
// run twice only when another operation of its group fails).
type bigDB struct {
	t      testing.TB
	ctx    context.Context
	shape  bigShape
	db     *store.DB
	l      *ledger.Ledger
	clock  time.Time // the ledger's clock: set before each of its operations
	rng    *rand.Rand
	texts  *payswitch.Texts
	sealer *seal.Sealer
	zone   *time.Location // the business day's, for daily_totals
	ids    *timeid.Generator

	wallets, merchants []bigAccount
	messageID, smscID  int64 // the last outbox message ID and SMSC message ID given
	rows               bigRows
}

type bigAccount struct{ id, msisdn, name, code string }

func newBigDB(t testing.TB, path string, shape bigShape) *bigDB {
	t.Helper()
	db, err := store.Open(path, store.Options{Synchronous: "OFF"}, ledger.Schema, otp.Schema, outbox.Schema,
		payswitch.Schema, smpp.GatewaySchema, merchant.Schema, webhook.Schema, sales.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := &bigDB{t: t, ctx: context.Background(), shape: shape, db: db, rng: rand.New(rand.NewPCG(21, uint64(shape.payments))),
		rows: newBigRows()}
	b.l = ledger.New(db, func() time.Time { return b.clock })
	if b.texts, err = payswitch.NewTexts(nil); err != nil {
		t.Fatal(err)
	}
	if b.sealer, err = seal.New([]byte("payswitch large database builder"), bigSealLabel); err != nil {
		t.Fatal(err)
	}
	if b.zone, err = time.LoadLocation("Africa/Nairobi"); err != nil {
		t.Fatal(err)
	}
	// The engine's payment IDs (switch/ids.go): ten letters that sort by time.
	b.ids = timeid.New(timeid.Layout{Alphabet: "ABCDEFGHJKLMNPQRSTUVWXYZ", Tick: 10 * time.Second,
		Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TickSymbols: 6, SeqSymbols: 4})
	return b
}

// setupTime is when the i-th account or deposit of the hour before the payments is made.
func (b *bigDB) setupTime(i int) time.Time {
	n := b.shape.merchants + 2*b.shape.wallets
	return b.shape.from.Add(-time.Hour + time.Duration(i)*time.Hour/time.Duration(n+1))
}

// write runs fn in one store.Write and then writes the rows it buffered, in the same
// transaction.
func (b *bigDB) write(fn func(tx store.Tx) error) {
	b.t.Helper()
	if err := b.db.Write(b.ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return b.rows.flush(b.ctx, tx)
	}); err != nil {
		b.t.Fatal(err)
	}
}

// openAccounts opens the merchants' tills and the wallets, as the operator API does.
func (b *bigDB) openAccounts() {
	n := 0
	for i := range b.shape.merchants {
		b.merchants = append(b.merchants, bigAccount{msisdn: fmt.Sprintf("2547%08d", 95_000_000+i),
			name: fmt.Sprintf("Duka la %s %d", bigNames[i%len(bigNames)], i), code: strconv.Itoa(80_000 + i)})
	}
	for i := range b.shape.wallets {
		b.wallets = append(b.wallets, bigAccount{msisdn: fmt.Sprintf("2547%08d", 20_000_000+i),
			name: fmt.Sprintf("%s %s", bigNames[i%len(bigNames)], bigNames[(i/len(bigNames))%len(bigNames)])})
	}
	for _, g := range []struct {
		typ  ledger.AccountType
		list []bigAccount // shares b.merchants' or b.wallets' array, which get the IDs
	}{{ledger.Merchant, b.merchants}, {ledger.Wallet, b.wallets}} {
		typ, list := g.typ, g.list
		for from := 0; from < len(list); from += bigChunk {
			b.write(func(tx store.Tx) error {
				for i := from; i < min(from+bigChunk, len(list)); i++ {
					b.clock = b.setupTime(n)
					n++
					a, err := b.l.In(tx).CreateAccount(b.ctx, ledger.NewAccount{Type: typ, Currency: bigCurrency,
						Name: list[i].name, MSISDN: list[i].msisdn, Code: list[i].code})
					if err != nil {
						return err
					}
					list[i].id = a.ID
				}
				return nil
			})
		}
	}
}

// deposit funds every wallet with a cash deposit through the operator API
// (POST /api/v1/deposits): the cash account's transfer, the payment and its event, and
// the deposit notice sent.
func (b *bigDB) deposit() {
	for from := 0; from < len(b.wallets); from += bigChunk {
		b.write(func(tx store.Tx) error {
			lt := b.l.In(tx)
			if from == 0 {
				b.clock = b.setupTime(b.shape.merchants + b.shape.wallets)
				if _, err := lt.SystemAccount(b.ctx, ledger.Cash, bigCurrency, bigCurrency); err != nil {
					return err
				}
			}
			for i := from; i < min(from+bigChunk, len(b.wallets)); i++ {
				w := &b.wallets[i]
				at := b.setupTime(b.shape.merchants + b.shape.wallets + i)
				id, ref := b.ids.Next(at), fmt.Sprintf("CASHIN-%07d", i)
				b.clock = at
				tr, err := lt.Transfer(b.ctx, ledger.TransferRequest{Key: "deposit:" + ref, Debit: "cash:" + bigCurrency,
					Credit: w.id, Amount: bigDeposit, PaymentID: id, Kind: "deposit"})
				if err != nil {
					return err
				}
				us := at.UnixMicro()
				b.rows.payments.add(id, "deposit", "api", "completed", "", "cash:"+bigCurrency, w.id, w.name, "", w.msisdn,
					int64(bigDeposit), bigCurrency, ref, "deposit:"+ref, tr.ID, 0, us, us)
				b.rows.events.add(id, us, "create", "", "completed")
				text := b.texts.Render("deposit_notice", map[string]string{"id": id,
					"amount": payswitch.FormatMoney(bigCurrency, bigDeposit), "balance": payswitch.FormatMoney(bigCurrency, tr.CreditBalanceAfter)})
				b.message(w.msisdn, text, id, "deposit", false, false, at, at.Add(time.Millisecond))
			}
			return nil
		})
	}
}

// pay writes the shape's payments, calling progress with the number written after each
// store.Write.
func (b *bigDB) pay(progress func(done int)) {
	n := b.shape.payments
	spacing := b.shape.to.Sub(b.shape.from) / time.Duration(n)
	// The payer's reply comes before the next payment starts, so that the journal's
	// times and the payments' run in the same order.
	confirm := min(spacing/2, 15*time.Second)
	for from := 0; from < n; from += bigChunk {
		b.write(func(tx store.Tx) error {
			for i := from; i < min(from+bigChunk, n); i++ {
				if err := b.payment(tx, b.shape.from.Add(time.Duration(i)*spacing), confirm); err != nil {
					return err
				}
			}
			return nil
		})
		progress(min(from+bigChunk, n))
	}
}

// payment writes one SMS merchant payment, PAY <till> <amount> at at and the right code
// confirm later, with the rows the switch leaves for it:
//   - the ledger's hold (key "<id>:hold") and its post: the hold posted, its transfer
//     and two journal entries, the payer's and the till's balances;
//   - payments: the payment completed; payment_events: create (to pending_otp) and
//     confirm (to completed); daily_totals: the payer's day counts the amount;
//   - otp_codes: the code's digest, used; auth_events: issued, delivered (the code
//     SMS's delivery receipt) and confirmed;
//   - messages: the code SMS (its text sealed), delivered; the payer's receipt,
//     delivered; the till's notice, sent (no receipt asked); message_parts: the SMSC's
//     message IDs of the two that asked for a delivery receipt.
//
// No payment_items (a PAY has none) and no webhook event (the tills have no webhook).
func (b *bigDB) payment(tx store.Tx, at time.Time, confirm time.Duration) error {
	w := &b.wallets[b.rng.IntN(len(b.wallets))]
	m := &b.merchants[b.rng.IntN(len(b.merchants))]
	// KES 10 to 5,000.00, most of them small.
	amount := int64(1000 + b.rng.IntN(1000)*b.rng.IntN(500))
	id, done := b.ids.Next(at), at.Add(confirm)
	lt, key := b.l.In(tx), id+":hold"
	b.clock = at
	if _, err := lt.Hold(b.ctx, ledger.HoldRequest{Key: key, Debit: w.id, Credit: m.id, Amount: amount,
		PaymentID: id, Kind: "merchant_payment"}); err != nil {
		return err
	}
	b.clock = done
	tr, err := lt.Post(b.ctx, key)
	if err != nil {
		return err
	}
	created, confirmed, expires := at.UnixMicro(), done.UnixMicro(), at.Add(bigCodeTTL).UnixMicro()
	r := &b.rows
	r.payments.add(id, "merchant_payment", "sms", "completed", w.msisdn, w.id, m.id, m.name, m.code, m.msisdn,
		amount, bigCurrency, "", nil, tr.ID, expires, created, confirmed)
	r.events.add(id, created, "create", "", "pending_otp")
	r.events.add(id, confirmed, "confirm", "pending_otp", "completed")
	day := time.Date(at.In(b.zone).Year(), at.In(b.zone).Month(), at.In(b.zone).Day(), 0, 0, 0, 0, b.zone).UnixMicro()
	r.daily[bigDay{w.msisdn, day}] += amount

	digest := make([]byte, 32) // an HMAC-SHA256 (otp.Issuer's digest) of a code no one will enter again
	for i := range digest {
		digest[i] = byte(b.rng.Uint32())
	}
	r.codes.add(id, digest, created, expires, "used")
	delivered, masked := at.Add(confirm/4), otp.Mask(w.msisdn)
	r.auth.add(otpTime(at), id, masked, "sms", otp.EventIssued, "")
	r.auth.add(otpTime(delivered), id, masked, "sms", otp.EventDelivered, "DELIVRD")
	r.auth.add(otpTime(done), id, masked, "sms", otp.EventConfirmed, "")

	vars := map[string]string{"id": id, "amount": payswitch.FormatMoney(bigCurrency, amount),
		"payee": m.name + " (" + m.code + ")", "payer": payswitch.Mask(w.msisdn),
		"minutes": strconv.Itoa(int(bigCodeTTL / time.Minute))}
	code := fmt.Sprintf("%06d", b.rng.IntN(1_000_000))
	sealed, err := b.sealer.Seal([]byte(b.texts.RenderCode("otp", vars, code, 6)), []byte("sms\x00"+w.msisdn+"\x00"+id))
	if err != nil {
		return err
	}
	b.message(w.msisdn, sealed, id, "otp", true, true, at, delivered)
	vars["balance"] = payswitch.FormatMoney(bigCurrency, tr.DebitBalanceAfter)
	b.message(w.msisdn, b.texts.Render("receipt", vars), id, "receipt", true, false, done, done.Add(confirm/4))
	vars["balance"] = payswitch.FormatMoney(bigCurrency, tr.CreditBalanceAfter)
	b.message(m.msisdn, b.texts.Render("payee_notice", vars), id, "notice", false, false, done, done.Add(time.Millisecond))
	return nil
}

// otpTime is auth_events.time's form (otp's timeLayout).
func otpTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// message buffers an SMS sent on bigLink at created; one that asked for a delivery
// receipt (receipt) got it at updated and is delivered, the others are sent.
func (b *bigDB) message(to, text, paymentID, purpose string, receipt, sealed bool, created, updated time.Time) {
	b.messageID++
	b.smscID++
	smscID := fmt.Sprintf("%016x", 0x5e5e000000000000+b.smscID)
	state := "sent"
	if receipt {
		state = "delivered"
		b.rows.parts.add(bigLink, smscID, b.messageID, 0, "DELIVRD")
	}
	b.rows.messages.add(b.messageID, "sms", to, bigShortcode, text, paymentID, purpose, receipt, state, 1,
		created.UnixMicro(), updated.UnixMicro(), bigLink, `["`+smscID+`"]`, sealed)
}

// bigNames make the accounts' names.
var bigNames = []string{"Wanjiru", "Otieno", "Achieng", "Kamau", "Njeri", "Mwangi", "Atieno", "Kiprop", "Chebet",
	"Mutua", "Wambui", "Omondi", "Akinyi", "Kariuki", "Nyambura", "Kibet"}

// bigRows are the rows of a store.Write that bigDB writes by multi-row INSERTs.
type bigRows struct {
	payments, events, codes, auth, messages, parts *bulkInsert
	daily                                          map[bigDay]int64 // amounts to add to daily_totals
}

type bigDay struct {
	msisdn string
	day    int64
}

func newBigRows() bigRows {
	return bigRows{
		payments: newBulkInsert("payments", "id, type, channel, state, payer_msisdn, payer_account, payee_account, payee_name, "+
			"payee_code, payee_msisdn, amount, currency, reference, request_key, transfer_id, expires_at, created_at, updated_at", ""),
		events: newBulkInsert("payment_events", "payment_id, time, event, from_state, to_state", ""),
		codes:  newBulkInsert("otp_codes", "payment_id, digest, issued_at, expires_at, state", ""),
		auth:   newBulkInsert("auth_events", "time, payment_id, msisdn_masked, channel, event, detail", ""),
		messages: newBulkInsert("messages", "id, kind, to_addr, from_addr, text, payment_id, purpose, request_receipt, "+
			"state, attempts, created_at, updated_at, link, message_ids, sealed", ""),
		parts: newBulkInsert("message_parts", "link, message_id, outbox_id, part, status", ""),
		daily: map[bigDay]int64{},
	}
}

// flush writes the rows, parents before the rows that refer to them.
func (r *bigRows) flush(ctx context.Context, tx store.Tx) error {
	daily := newBulkInsert("daily_totals", "msisdn, day, amount",
		" ON CONFLICT (msisdn, day) DO UPDATE SET amount = amount + excluded.amount")
	for k, amount := range r.daily {
		daily.add(k.msisdn, k.day, amount)
	}
	clear(r.daily)
	for _, bi := range []*bulkInsert{r.payments, r.events, r.codes, r.auth, r.messages, r.parts, daily} {
		if err := bi.flush(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// bulkInsert gathers rows of one table and writes them with as few INSERTs as SQLite's
// limit on bound parameters allows.
type bulkInsert struct {
	head, tail string // the statement before its VALUES rows, and after them
	cols       int
	args       []any
}

func newBulkInsert(table, cols, tail string) *bulkInsert {
	return &bulkInsert{head: "INSERT INTO " + table + " (" + cols + ") VALUES ", tail: tail,
		cols: strings.Count(cols, ",") + 1}
}

func (bi *bulkInsert) add(vals ...any) {
	if len(vals) != bi.cols {
		panic(fmt.Sprintf("%s: %d values for %d columns", bi.head, len(vals), bi.cols))
	}
	bi.args = append(bi.args, vals...)
}

func (bi *bulkInsert) flush(ctx context.Context, tx store.Tx) error {
	row := "(?" + strings.Repeat(", ?", bi.cols-1) + ")"
	for args := bi.args; len(args) > 0; {
		n := min(len(args)/bi.cols, bigMaxVars/bi.cols)
		q := bi.head + row + strings.Repeat(", "+row, n-1) + bi.tail
		if _, err := tx.ExecContext(ctx, q, args[:n*bi.cols]...); err != nil {
			return fmt.Errorf("%s: %w", bi.head, err)
		}
		args = args[n*bi.cols:]
	}
	clear(bi.args)
	bi.args = bi.args[:0]
	return nil
}

// buildLargeTransfers writes n ledger transfers (wallet to merchant, through the
// ledger's batch API) into the new file path: the ledger's tables without the payments'
// other rows.
func buildLargeTransfers(t *testing.T, path string, n int) {
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

// A payment the builder writes leaves, table by table, the rows a real SMS payment
// through serve leaves (and a deposit the rows of a deposit through the API): as many
// in every table, each with the same columns set, the same states, kinds, events and
// flags, and texts of the same form, so that the large database measures what a
// switch's would.
func TestLargeDatabasePaymentsAreShapedLikeRealOnes(t *testing.T) {
	s := startSwitch(t, "5m")
	real := s.app.db.Reader()
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	a, shop := s.phone(alice), s.phone(mama)
	opened := tableCounts(t, real)
	s.deposit(w.ID, 100000, "CASHIN-1")
	depositID, _, _ := strings.Cut(a.expect("deposited"), ":")
	waitRows(t, real, `SELECT count(*) FROM messages WHERE payment_id = ?1 AND state = 'sent'`, depositID, 1)
	deposited := tableCounts(t, real)
	a.send("PAY 55501 150")
	codeSMS := a.expect("KES 150.00")
	paymentID, _, _ := strings.Cut(codeSMS, ":")
	a.send(codeIn(t, codeSMS))
	a.expect("confirmed")
	shop.expect("received")
	// Both delivery receipts in (the code SMS's and the receipt's), and the notice sent.
	waitRows(t, real, `SELECT count(*) FROM messages WHERE payment_id = ?1 AND state = 'delivered'`, paymentID, 2)
	waitRows(t, real, `SELECT count(*) FROM messages WHERE payment_id = ?1 AND state = 'sent'`, paymentID, 1)
	waitRows(t, real, `SELECT count(*) FROM auth_events WHERE payment_id = ?1`, paymentID, 3)
	paid := tableCounts(t, real)

	b := newBigDB(t, filepath.Join(t.TempDir(), "big.db"), bigShapeFor(1, time.Now()))
	built := b.db.Reader()
	b.openAccounts()
	bOpened := tableCounts(t, built)
	b.deposit()
	bDeposited := tableCounts(t, built)
	b.pay(func(int) {})
	bPaid := tableCounts(t, built)

	compareCounts(t, "deposit", countsAdded(opened, deposited), countsAdded(bOpened, bDeposited))
	compareCounts(t, "payment", countsAdded(deposited, paid), countsAdded(bDeposited, bPaid))
	var bDepositID, bPaymentID string
	if err := built.QueryRow(`SELECT (SELECT id FROM payments WHERE type = 'deposit'),
		(SELECT id FROM payments WHERE type = 'merchant_payment')`).Scan(&bDepositID, &bPaymentID); err != nil {
		t.Fatal(err)
	}
	compareShapes(t, "deposit", rowShapes(t, real, depositID), rowShapes(t, built, bDepositID))
	compareShapes(t, "payment", rowShapes(t, real, paymentID), rowShapes(t, built, bPaymentID))
}

// tableCounts counts the rows of every table of db.
func tableCounts(t *testing.T, db *sql.DB) map[string]int {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, table := range tables {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	return counts
}

// countsAdded is the rows each table gained from before to after, for those that did.
func countsAdded(before, after map[string]int) map[string]int {
	added := map[string]int{}
	for table, n := range after {
		if n != before[table] {
			added[table] = n - before[table]
		}
	}
	return added
}

func compareCounts(t *testing.T, what string, real, built map[string]int) {
	t.Helper()
	// The keys of MOs decided from the journal stay only while their segments do, a few
	// seconds (serve_mospool.go): a database at rest, which the big one models, holds none.
	delete(real, "sms_decided")
	if fmt.Sprint(real) != fmt.Sprint(built) {
		t.Errorf("rows a %s adds: built %v, real %v", what, built, real)
	}
}

// waitRows waits until query (with ?1 the payment ID id) counts want rows: delivery
// receipts and sends are written after the SMS the phone sees.
func waitRows(t *testing.T, db *sql.DB, query, id string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.QueryRow(query, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d rows, want %d", query, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// paymentRowQueries select the rows of each table that belong to payment ?1.
var paymentRowQueries = map[string]string{
	"payments":       `SELECT * FROM payments WHERE id = ?1`,
	"payment_events": `SELECT * FROM payment_events WHERE payment_id = ?1`,
	"payment_items":  `SELECT * FROM payment_items WHERE payment_id = ?1`,
	"daily_totals":   `SELECT * FROM daily_totals WHERE msisdn = (SELECT payer_msisdn FROM payments WHERE id = ?1)`,
	"otp_codes":      `SELECT * FROM otp_codes WHERE payment_id = ?1`,
	"auth_events":    `SELECT * FROM auth_events WHERE payment_id = ?1`,
	"messages":       `SELECT * FROM messages WHERE payment_id = ?1`,
	"message_parts":  `SELECT * FROM message_parts WHERE outbox_id IN (SELECT id FROM messages WHERE payment_id = ?1)`,
	"holds":          `SELECT * FROM holds WHERE payment_id = ?1`,
	"transfers":      `SELECT * FROM transfers WHERE payment_id = ?1`,
	"entries":        `SELECT * FROM entries WHERE payment_id = ?1`,
	"webhook_events": `SELECT * FROM webhook_events WHERE subject = ?1`,
}

// Columns whose values rowShapes keeps: they take a few values each. Of the other
// columns it keeps the type and, for text, the length, except for the texts below,
// whose lengths vary with the names, amounts and references in them.
var (
	shapeValueColumns = map[string]bool{"type": true, "channel": true, "state": true, "currency": true,
		"event": true, "from_state": true, "to_state": true, "detail": true, "kind": true, "direction": true,
		"purpose": true, "request_receipt": true, "attempts": true, "resends": true, "sealed": true,
		"dead_reason": true, "status": true, "part": true, "last_error": true, "meta": true, "reason": true}
	shapeFreeTexts = map[string]bool{"text": true, "name": true, "payee_name": true, "payee_code": true,
		"reference": true, "request_key": true, "key": true, "link": true}
)

// rowShapes describes the rows of payment id in every table of paymentRowQueries, each
// row as its columns' shapes, sorted (the order of rows is not what is compared).
func rowShapes(t *testing.T, db *sql.DB, id string) map[string][]string {
	t.Helper()
	shapes := map[string][]string{}
	for table, q := range paymentRowQueries {
		rows, err := db.Query(q, id)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var row []string
			for i, v := range vals {
				row = append(row, cols[i]+"="+valueShape(cols[i], v))
			}
			shapes[table] = append(shapes[table], strings.Join(row, " "))
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			t.Fatal(err)
		}
		slices.Sort(shapes[table])
	}
	return shapes
}

func valueShape(col string, v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		switch {
		case shapeValueColumns[col]:
			return strconv.Quote(x)
		case x == "":
			return "''"
		case shapeFreeTexts[col]:
			return "text"
		}
		return fmt.Sprintf("text(%d)", len(x))
	case []byte:
		return fmt.Sprintf("blob(%d)", len(x))
	case int64:
		if shapeValueColumns[col] {
			return strconv.FormatInt(x, 10)
		}
		return "int"
	}
	return fmt.Sprintf("%T", v)
}

func compareShapes(t *testing.T, what string, real, built map[string][]string) {
	t.Helper()
	for table := range paymentRowQueries {
		if r, b := strings.Join(real[table], "\n"), strings.Join(built[table], "\n"); r != b {
			t.Errorf("%s's rows in %s:\nbuilt:\n%s\nreal:\n%s", what, table, b, r)
		}
	}
}

// A database the builder writes checks out as the switch's own would: a backup of it
// passes SQLite's integrity check and the ledger's verification (chain, entries against
// transfers, balances and holds), its auditor export verifies, and serve started on it
// takes a payment from one of its wallets to one of its tills.
func TestLargeDatabaseChecksOutAndTakesPayments(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "payswitch.db")
	shape := bigShapeFor(2000, time.Now())
	b := newBigDB(t, path, shape)
	b.openAccounts()
	b.deposit()
	b.pay(func(int) {})
	if err := b.db.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("database: {path: %q}\nhttp: {listen: \"127.0.0.1:8080\"}\ncurrency: KES\nshortcode: \"22333\"\ntimezone: Africa/Nairobi\n", path)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	accounts, transfers := shape.wallets+shape.merchants+1, shape.payments+shape.wallets
	stdout, stderr, err := runCmd("backup", "-config", cfg, "-out", filepath.Join(dir, "backup.db"))
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	if want := fmt.Sprintf("ledger     %d accounts, %d transfers, chain and balances verified", accounts, transfers); !strings.Contains(stdout, want) {
		t.Errorf("backup says:\n%s\nwant %q", stdout, want)
	}
	if _, stderr, err := runCmd("export", "-config", cfg, "-out", filepath.Join(dir, "export")); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	stdout, stderr, err = runCmd("verify", filepath.Join(dir, "export"))
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
	for _, want := range []string{"OK\n", fmt.Sprintf("journal      %d rows, seq 1..%d", 2*transfers, 2*transfers),
		fmt.Sprintf("auth events  %d rows", 3*shape.payments)} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify says:\n%s\nwant %q", stdout, want)
		}
	}

	s := startSwitchAt(t, dir, "5m", "")
	payer, till := s.phone(b.wallets[0].msisdn), s.phone(b.merchants[0].msisdn)
	before := s.account(b.wallets[0].id).Balance.Posted
	payer.send("PAY " + b.merchants[0].code + " 150")
	payer.send(codeIn(t, payer.expect("KES 150.00", b.merchants[0].name)))
	payer.expect("confirmed", "New balance "+payswitch.FormatMoney("KES", before-15000))
	till.expect("received", "KES 150.00")
}
