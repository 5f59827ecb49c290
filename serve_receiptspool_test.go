package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/receiptspool"
)

// aliceAndTill opens alice's wallet with KES 1,000 (she has read the deposit SMS) and the
// till 55501, and returns her phone.
func aliceAndTill(s *testSwitch) *phone {
	s.t.Helper()
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	return a
}

// On SQLite a delivery receipt goes through the spool beside the database: the SMSC
// has its answer once the receipt is there, and the switch applies it to the message
// just after, with what it means for the code.
func TestReceiptIsSpooledThenApplied(t *testing.T) {
	s := startSwitch(t, "5m")
	if s.app.spool == nil {
		t.Fatal("no receipt spool on SQLite with receipt_spool left at its default")
	}
	if fi, err := os.Stat(filepath.Join(s.dir, "payswitch.db.receipts")); err != nil || !fi.IsDir() {
		t.Fatalf("the spool's folder beside the database: %v", err)
	}
	a := aliceAndTill(s)
	a.send("PAY 55501 150")
	a.expect("KES 150.00", "Mama Mboga")
	s.simIdle(alice, 0)
	m, ok := s.codeMessage(alice)
	if !ok || m.State != outbox.StateDelivered || s.partStatus(m, 0) != "DELIVRD" {
		t.Fatalf("code SMS once its receipt was applied: %s", describeMessage(m))
	}
	if ev := s.deliveryEvents(m.PaymentID); len(ev) != 1 || ev[0] != "delivered DELIVRD" {
		t.Fatalf("delivery events = %q, want one delivered DELIVRD", ev)
	}
	if v := s.metric("payswitch_receipt_spool_applied_total"); v == "" || v == "0" {
		t.Fatalf("payswitch_receipt_spool_applied_total = %q, want the receipts applied", v)
	}
	if v := s.metric("payswitch_receipt_spool_depth"); v != "0" {
		t.Fatalf("payswitch_receipt_spool_depth = %q, want 0", v)
	}
}

// A receipt the switch acknowledged and spooled, and then could not apply before it
// stopped (a crash, a kill), is applied when it starts again, and the code's delivery is
// recorded then.
func TestSpooledReceiptIsAppliedAtTheNextStart(t *testing.T) {
	s := startSwitch(t, "5m")
	a := aliceAndTill(s)
	s.sim.SetAway(alice, true) // the SMSC keeps the code SMS: ENROUTE only
	a.send("PAY 55501 150")
	var code outbox.Message
	eventually(t, "the code SMS sent and its ENROUTE applied", func() bool {
		m, ok := s.codeMessage(alice)
		if !ok || m.State != outbox.StateSent || len(m.MessageIDs) != 1 || !s.receiptsApplied() {
			return false
		}
		code = m
		return s.partStatus(m, 0) == "ENROUTE"
	})
	s.stop()

	// What a process that died after acknowledging the final receipt leaves: the
	// receipt in the spool, not in the database.
	spool, err := receiptspool.Open(receiptspool.Config{Dir: filepath.Join(s.dir, "payswitch.db.receipts")})
	if err != nil {
		t.Fatal(err)
	}
	if err := spool.Put(context.Background(), receiptspool.Receipt{Link: code.Link, MessageID: code.MessageIDs[0], Status: "DELIVRD"}); err != nil {
		t.Fatal(err)
	}
	if err := spool.Close(); err != nil {
		t.Fatal(err)
	}

	s.start()
	eventually(t, "the spooled receipt applied", func() bool {
		m, _ := s.codeMessage(alice)
		return m.State == outbox.StateDelivered && s.receiptsApplied()
	})
	if st := s.partStatus(code, 0); st != "DELIVRD" {
		t.Fatalf("part status %q, want DELIVRD", st)
	}
	if ev := s.deliveryEvents(code.PaymentID); len(ev) != 1 || ev[0] != "delivered DELIVRD" {
		t.Fatalf("delivery events = %q, want one delivered DELIVRD", ev)
	}
}

// With receipt_spool off, a receipt is applied before its deliver_sm is answered and
// none goes through the spool, which still takes the MOs; with mo_spool off too, no
// spool is made.
func TestReceiptSpoolOff(t *testing.T) {
	dir := t.TempDir()
	s := startSwitchAt(t, dir, "5m", "")
	s.stop()
	os.RemoveAll(filepath.Join(dir, "payswitch.db.receipts"))
	s.tweak = func(c *config.Config) { c.Database.ReceiptSpool = config.ReceiptSpoolOff }
	s.start()
	a := aliceAndTill(s)
	a.send("PAY 55501 150")
	a.expect("KES 150.00", "Mama Mboga")
	s.simIdle(alice, 0)
	if m, ok := s.codeMessage(alice); !ok || m.State != outbox.StateDelivered {
		t.Fatalf("code SMS once every receipt was acknowledged: %s", describeMessage(m))
	}
	if v := s.metric("payswitch_receipt_spool_applied_total"); v != "0" {
		t.Fatalf("payswitch_receipt_spool_applied_total = %q with receipt_spool off, want 0", v)
	}
	if v := s.metric("payswitch_mo_spool_applied_total"); v != "1" {
		t.Fatalf("payswitch_mo_spool_applied_total = %q, want the PAY", v)
	}

	s.stop()
	os.RemoveAll(filepath.Join(dir, "payswitch.db.receipts"))
	s.tweak = func(c *config.Config) {
		c.Database.ReceiptSpool, c.Database.MOSpool = config.ReceiptSpoolOff, config.ReceiptSpoolOff
	}
	s.start()
	if s.app.spool != nil {
		t.Fatal("a spool with receipt_spool and mo_spool off")
	}
	if _, err := os.Stat(filepath.Join(s.dir, "payswitch.db.receipts")); !os.IsNotExist(err) {
		t.Fatalf("a spool folder with receipt_spool and mo_spool off (%v)", err)
	}
	a.send("CANCEL")
	a.expect()
}
