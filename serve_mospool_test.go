package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/receiptspool"
	"github.com/payswitch/payswitch/smpp"
)

// On SQLite a phone's SMS goes through the spool: the SMSC has its answer once the MO
// is there, and the engine decides on it just after.
func TestMOIsSpooledThenDecided(t *testing.T) {
	s := startSwitch(t, "5m")
	a := aliceAndTill(s)
	a.send("PAY 55501 150")
	code := codeIn(t, a.expect("KES 150.00", "Mama Mboga"))
	a.send(code)
	a.expect("confirmed")
	s.simIdle(alice, 0)
	if v := s.metric("payswitch_mo_spool_applied_total"); v != "2" {
		t.Fatalf("payswitch_mo_spool_applied_total = %q, want 2 (the PAY and the code)", v)
	}
	if v := s.metric("payswitch_mo_spool_depth"); v != "0" {
		t.Fatalf("payswitch_mo_spool_depth = %q, want 0", v)
	}
}

// spoolMO writes what a process that died after acknowledging an MO leaves in the
// switch's spool folder (the switch stopped): text from alice, sealed as serve seals it.
func spoolMO(t *testing.T, s *testSwitch, text string) {
	t.Helper()
	secret, err := otp.ParseSecret(testOTPSecret)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := newMOSealer(secret)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sealer.seal(smpp.MO{Link: "carrier-a", From: alice, To: "22333", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	// The dead process's segments were numbered above every key its engine kept, as
	// serve numbers them (openReceiptSpool); far above does as well.
	spool, err := receiptspool.Open(receiptspool.Config{Dir: filepath.Join(s.dir, "payswitch.db.receipts"),
		FirstSegment: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := spool.PutMO(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := spool.Close(); err != nil {
		t.Fatal(err)
	}
}

// spoolBytes is every byte of the spool's files.
func spoolBytes(t *testing.T, s *testSwitch) []byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.dir, "payswitch.db.receipts", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// A code reply the switch acknowledged and spooled, and then could not decide on before
// it stopped (a crash, a kill), is on disk sealed, never in clear, and pays when the
// switch starts again.
func TestSpooledCodeIsSealedAndDecidedAtTheNextStart(t *testing.T) {
	s := startSwitch(t, "5m")
	a := aliceAndTill(s)
	a.send("PAY 55501 150")
	code := codeIn(t, a.expect("KES 150.00", "Mama Mboga"))
	s.simIdle(alice, 0)
	s.stop()

	spoolMO(t, s, "  "+code+"  ")
	raw := spoolBytes(t, s)
	if len(raw) == 0 {
		t.Fatal("nothing in the spool's folder")
	}
	if bytes.Contains(raw, []byte(code)) {
		t.Fatalf("the code %s is in the spool in clear", code)
	}
	if !bytes.Contains(raw, []byte(alice)) {
		t.Fatal("the MO's number is not in the spool: did the record go elsewhere?")
	}

	s.start()
	a.expect("confirmed")
	s.simIdle(alice, 0)
	if v := s.metric("payswitch_mo_spool_applied_total"); v != "1" {
		t.Fatalf("payswitch_mo_spool_applied_total = %q, want 1", v)
	}
}

// MOs a process left spooled are decided on at the next start even when the spool is
// now turned off for both receipts and MOs; once it is empty, a later start makes none.
func TestLeftSpoolIsDecidedWithTheSpoolOff(t *testing.T) {
	s := startSwitch(t, "5m")
	a := aliceAndTill(s)
	s.stop()
	spoolMO(t, s, "BAL")

	s.tweak = func(c *config.Config) {
		c.Database.MOSpool, c.Database.ReceiptSpool = config.ReceiptSpoolOff, config.ReceiptSpoolOff
	}
	s.start()
	if s.app.spool == nil {
		t.Fatal("no spool opened for the MO a process left in it")
	}
	a.expect("KES 1,000.00")
	s.simIdle(alice, 0)
	s.stop()
	if raw := spoolBytes(t, s); len(raw) != 0 {
		t.Fatalf("%d bytes left in the spool once its MO was decided on", len(raw))
	}

	s.start()
	if s.app.spool != nil {
		t.Fatal("a spool opened with mo_spool and receipt_spool off and nothing left in it")
	}
	a.send("PAY 55501 150")
	a.expect("KES 150.00", "Mama Mboga")
}

// With mo_spool off, an MO is decided on before its deliver_sm is answered, and none
// goes through the spool, which still takes the receipts.
func TestMOSpoolOff(t *testing.T) {
	s := startSwitch(t, "5m")
	s.stop()
	s.tweak = func(c *config.Config) { c.Database.MOSpool = config.ReceiptSpoolOff }
	s.start()
	a := aliceAndTill(s)
	a.send("PAY 55501 150")
	a.expect("KES 150.00", "Mama Mboga")
	s.simIdle(alice, 0)
	if v := s.metric("payswitch_mo_spool_applied_total"); v != "0" {
		t.Fatalf("payswitch_mo_spool_applied_total = %q with mo_spool off, want 0", v)
	}
	if v := s.metric("payswitch_receipt_spool_applied_total"); v == "" || v == "0" {
		t.Fatalf("payswitch_receipt_spool_applied_total = %q, want the receipts still spooled", v)
	}
}

// The spool applies at least once: an MO a process decided and then died before its
// segment was deleted is read again at the next start. Decided under its key, it is
// not decided twice: one payment, one code SMS.
func TestSpooledMOAppliedAgainIsDecidedOnce(t *testing.T) {
	s := startSwitch(t, "5m")
	a := aliceAndTill(s)
	s.stop()
	spoolMO(t, s, "PAY 55501 150")
	s.start()
	a.expect("KES 150.00", "Mama Mboga")
	s.simIdle(alice, 0)
	s.stop()

	spoolMO(t, s, "PAY 55501 150") // the same record, read again
	s.start()
	eventually(t, "the spool applied", func() bool { return s.app.spool.Depth() == 0 })
	s.simIdle(alice, 0)
	a.send("BAL")
	if got := a.expect(); strings.Contains(got, "Mama Mboga") {
		t.Fatalf("the PAY read again was decided again: %q", got)
	}
	var list struct{ Payments []struct{ ID, Type string } }
	if code := s.call("GET", "/api/v1/payments?msisdn="+alice+"&limit=5", auditToken, nil, &list); code != 200 ||
		len(list.Payments) != 2 || list.Payments[0].Type != "merchant_payment" || list.Payments[1].Type != "deposit" {
		t.Fatalf("alice's payments: %d %+v; want her deposit and one payment", code, list)
	}
}
