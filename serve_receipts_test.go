package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
)

// codeMessage returns the newest code SMS to msisdn as the outbox has it, or false.
func (s *testSwitch) codeMessage(msisdn string) (outbox.Message, bool) {
	s.t.Helper()
	ms, err := s.app.outbox.List(context.Background(), msisdn, 20)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, m := range ms {
		if m.Purpose == "otp" && m.Kind != outbox.KindCall {
			return m, true
		}
	}
	return outbox.Message{}, false
}

// describeMessage describes m for a failure message without its text, which may hold a code.
func describeMessage(m outbox.Message) string {
	return fmt.Sprintf("message %d (%s %s to %s) %s, parts %v, receipt requested %v",
		m.ID, m.Kind, m.Purpose, m.To, m.State, m.MessageIDs, m.RequestReceipt)
}

// describeMessages is describeMessage for several messages.
func describeMessages(ms []outbox.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, describeMessage(m))
	}
	return out
}

// partStatus returns the last receipt status recorded for a part of m ("" for none).
func (s *testSwitch) partStatus(m outbox.Message, part int) string {
	s.t.Helper()
	var st string
	if err := s.app.db.Reader().QueryRow(`SELECT status FROM message_parts WHERE link = ? AND message_id = ?`,
		m.Link, m.MessageIDs[part]).Scan(&st); err != nil {
		s.t.Fatalf("part %d of message %d: %v", part, m.ID, err)
	}
	return st
}

// deliveryEvents returns the delivery events ("delivered", "delivery_failed") of the
// payment's code, oldest first, with their detail.
func (s *testSwitch) deliveryEvents(paymentID string) []string {
	s.t.Helper()
	rows, err := s.app.db.Reader().Query(`SELECT event, detail FROM auth_events
		WHERE payment_id = ? AND (event = 'delivered' OR event = 'delivery_failed') ORDER BY seq`, paymentID)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ev, detail string
		if err := rows.Scan(&ev, &detail); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, ev+" "+detail)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// simIdle waits until the simulated SMSC keeps kept MTs for msisdn and every delivery
// (MOs, receipts) was acknowledged by the switch, that is persisted, and every receipt
// acknowledged from the receipt spool is applied.
func (s *testSwitch) simIdle(msisdn string, kept int) {
	s.t.Helper()
	eventually(s.t, fmt.Sprintf("the SMSC to keep %d MTs and have nothing unacknowledged", kept), func() bool {
		return s.sim.Kept(msisdn) == kept && s.sim.Unacknowledged() == 0 && s.receiptsApplied()
	})
}

// receiptsApplied reports whether the receipt spool, if there is one, has applied every
// receipt it took.
func (s *testSwitch) receiptsApplied() bool {
	return s.app.spool == nil || s.app.spool.Depth() == 0
}

// startWithVoiceGateway starts a switch whose IVR calls through a test voice gateway,
// with alice's wallet holding KES 1,000 (she has read the deposit SMS) and the till
// 55501. gatewayCalls gets the body of every call the switch asks the gateway for.
func startWithVoiceGateway(t *testing.T) (s *testSwitch, a *phone, wallet accountResp, gatewayCalls chan string) {
	t.Helper()
	gatewayCalls = make(chan string, 4)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gatewayCalls <- string(b)
		fmt.Fprint(w, `{"sessionId":"CALL-9"}`)
	}))
	t.Cleanup(gw.Close)
	s = startSwitchWith(t, "5m", fmt.Sprintf("ivr:\n  number: \"254709000000\"\n  gateway:\n    url: %s\n", gw.URL))
	wallet = s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a = s.phone(alice)
	s.deposit(wallet.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	return s, a, wallet, gatewayCalls
}

// An ENROUTE receipt (the SMSC keeps the code SMS for a phone out of coverage) is not
// an answer: the code message stays sent, no delivery is recorded for the code and no
// voice call is offered. When the phone is back it gets the code, the payment goes
// through, and the final DELIVRD receipt records the delivery.
func TestEnrouteCodeReceiptWaitsForThePhone(t *testing.T) {
	s, a, w, gatewayCalls := startWithVoiceGateway(t)

	s.sim.SetAway(alice, true) // the handset leaves coverage
	a.send("PAY 55501 150")
	// The switch has the ENROUTE once the SMSC keeps the code SMS, nothing is left
	// unacknowledged, and the part carries ENROUTE (a receipt can overtake the
	// switch's record of the submit; the record then takes it).
	var code outbox.Message
	eventually(t, "the code SMS kept by the SMSC and its ENROUTE receipt recorded", func() bool {
		m, ok := s.codeMessage(alice)
		if !ok || m.State != outbox.StateSent || len(m.MessageIDs) == 0 || s.sim.Kept(alice) != 1 || s.sim.Unacknowledged() != 0 {
			return false
		}
		code = m
		return s.partStatus(m, 0) == "ENROUTE"
	})
	if len(code.MessageIDs) != 1 || !code.RequestReceipt {
		t.Fatalf("code SMS %s, want one part with a receipt requested", describeMessage(code))
	}
	pid := code.PaymentID
	if p := s.payment(pid); p["state"] != "pending_otp" {
		t.Fatalf("payment after ENROUTE: %+v", p)
	}
	if m, _ := s.codeMessage(alice); m.ID != code.ID || m.State != outbox.StateSent {
		t.Fatalf("code SMS after ENROUTE: %s, want %d still sent", describeMessage(m), code.ID)
	}
	// A voice call would have been queued in the receipt's own write, now durable.
	if calls, err := s.app.outbox.Calls(context.Background(), alice, 10); err != nil || len(calls) != 0 {
		t.Fatalf("calls queued after ENROUTE: %q %v", describeMessages(calls), err)
	}
	if ev := s.deliveryEvents(pid); len(ev) != 0 {
		t.Fatalf("delivery events after ENROUTE: %q", ev)
	}
	select {
	case b := <-gatewayCalls:
		t.Fatalf("the voice gateway was asked to call after ENROUTE (%d bytes)", len(b))
	default:
	}

	s.sim.SetAway(alice, false) // back in coverage: the SMSC delivers what it kept
	a.send(codeIn(t, a.expect("KES 150.00", "Mama Mboga")))
	a.expect("confirmed", "KES 150.00", "KES 850.00")
	s.waitState(pid, "completed")
	if b := s.account(w.ID).Balance; b.Posted != 85000 || b.Held != 0 {
		t.Fatalf("payer balance: %+v", b)
	}
	// The DELIVRD receipt follows the phone's return; once the SMSC has nothing left,
	// the switch has recorded it.
	s.simIdle(alice, 0)
	if m, _ := s.codeMessage(alice); m.ID != code.ID || m.State != outbox.StateDelivered || s.partStatus(m, 0) != "DELIVRD" {
		t.Fatalf("code SMS after the phone came back: %s", describeMessage(m))
	}
	if ev := s.deliveryEvents(pid); len(ev) != 1 || ev[0] != "delivered DELIVRD" {
		t.Fatalf("delivery events = %q, want one delivered DELIVRD", ev)
	}
	if calls, err := s.app.outbox.Calls(context.Background(), alice, 10); err != nil || len(calls) != 0 {
		t.Fatalf("calls queued: %q %v", describeMessages(calls), err)
	}
	select {
	case b := <-gatewayCalls:
		t.Fatalf("the voice gateway was asked to call (%d bytes)", len(b))
	default:
	}
}

// An SMSC can send a receipt before it answers the submit_sm, and the switch then gets
// the receipt before it has recorded where the message went. The receipt waits for that
// record, and what it says about the code must still count: here the code SMS is
// undeliverable, so the failure goes into the authentication history and the code is
// offered by a voice call.
func TestCodeReceiptBeforeItsSubmitIsRecordedStillCounts(t *testing.T) {
	s, a, _, gatewayCalls := startWithVoiceGateway(t)

	s.sim.SetUnreachable(alice, true)
	// The code SMS's submit_sm_resp comes 600 ms late; its UNDELIV receipt 200 ms after
	// the submit, so the receipt arrives first.
	s.sim.SetResponseDelay(1, 600*time.Millisecond)
	a.send("PAY 55501 150")
	select {
	case <-gatewayCalls:
	case <-time.After(15 * time.Second):
		t.Fatal("no voice call after the code SMS's early UNDELIV receipt")
	}
	code, ok := s.codeMessage(alice)
	if !ok {
		t.Fatal("no code SMS in the outbox")
	}
	if code.State != outbox.StateUndeliverable {
		t.Fatalf("code SMS: %s, want undeliverable", describeMessage(code))
	}
	if ev := s.deliveryEvents(code.PaymentID); len(ev) != 1 || ev[0] != "delivery_failed UNDELIV" {
		t.Fatalf("delivery events = %q, want one delivery_failed UNDELIV", ev)
	}
}
