package payswitch_test

import (
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"

	. "github.com/payswitch/payswitch/switch"
)

// BenchmarkPaymentFlow drives complete payments (PAY by SMS, read the code from the
// queued SMS, reply with it) through the engine and the ledger with durable commits
// (synchronous=FULL), from many phones at once as a live switch sees them. No SMPP.
// statements/payment counts what the store's one writer runs for a payment (SAVEPOINT and
// RELEASE included), and cpu-µs/payment the process's CPU time (phones included): on a
// shared machine both say more than payments/s.
func BenchmarkPaymentFlow(b *testing.B) {
	const phones = 256
	var statements atomic.Int64
	count := func(string) { statements.Add(1) }
	db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{OnStatement: count}, ledger.Schema, otp.Schema, outbox.Schema, Schema)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	benchPay(b, []*store.DB{db}, phones, &statements)
}

func sixDigits(s string) string {
	m := codeRun.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[2]
}
