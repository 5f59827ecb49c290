package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	gosmpp "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
)

// Issue 17 end to end: an aggregator bound to the switch's SMPP server may send only
// from the numbers its account declares (here 2541...), and codes go only over the
// carrier route of the number (the demo SMSC), never to the aggregator's bind.
func TestSMPPServerAccountCannotTakeCodes(t *testing.T) {
	s, addr := startSwitchWithAggregator(t, "2541")
	const carol = "254100000003" // a number the aggregator serves
	aliceW := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "wallet", "msisdn": bob, "name": "Bob"})
	carolW := s.open(map[string]string{"type": "wallet", "msisdn": carol, "name": "Carol"})
	alicePhone, carolPhone := s.phone(alice), s.phone(carol)
	s.deposit(aliceW.ID, 100000, "CASHIN-A")
	alicePhone.expect("KES 1,000.00")
	s.deposit(carolW.ID, 100000, "CASHIN-C")
	carolPhone.expect("KES 1,000.00")

	got := make(chan string, 16)
	agg := &gosmpp.Transceiver{Addr: addr, User: "aggregator-x", Passwd: "agg-pw",
		Handler: func(p pdu.Body) {
			if p.Header().ID == pdu.DeliverSMID {
				got <- string(p.Fields()[pdufield.ShortMessage].Bytes())
			}
		}}
	defer agg.Close()
	if st := <-agg.Bind(); st.Error() != nil {
		t.Fatalf("bind: %v", st.Error())
	}
	nothingAtTheAggregator := func(what string) {
		t.Helper()
		select {
		case txt := <-got:
			t.Fatalf("%s: the aggregator received %q", what, txt)
		default:
		}
	}

	// (a) The attack: "from" Alice, whose number the account does not serve.
	_, err := agg.Submit(&gosmpp.ShortMessage{Src: alice, Dst: "22333", Text: pdutext.Raw("SEND 0700000002 500")})
	var st pdu.Status
	if !errors.As(err, &st) || st != 0x0A {
		t.Fatalf("submit_sm from Alice's number: %v, want ESME_RINVSRCADR", err)
	}
	if b := s.account(aliceW.ID).Balance; b.Held != 0 || b.Posted != 100000 {
		t.Fatalf("Alice's balance after the refused submit_sm: %+v", b)
	}
	// Alice's own payment: her code reaches her phone, and only her phone.
	alicePhone.send("SEND 0700000002 150")
	code := codeIn(t, alicePhone.expect("KES 150.00", "Never share"))
	alicePhone.send(code)
	alicePhone.expect("KES 150.00")
	nothingAtTheAggregator("after Alice's payment")

	// (b) Carol writes through the aggregator, which serves her number: her code still
	// goes over the carrier route to her phone; an answer without a code comes back
	// through the aggregator.
	if _, err := agg.Submit(&gosmpp.ShortMessage{Src: carol, Dst: "22333", Text: pdutext.Raw("SEND 0700000002 100")}); err != nil {
		t.Fatalf("Carol's submit_sm: %v", err)
	}
	codeIn(t, carolPhone.expect("KES 100.00", "Never share"))
	nothingAtTheAggregator("after Carol's code was sent")
	if _, err := agg.Submit(&gosmpp.ShortMessage{Src: carol, Dst: "22333", Text: pdutext.Raw("BAL")}); err != nil {
		t.Fatalf("Carol's BAL: %v", err)
	}
	select {
	case txt := <-got:
		if !strings.Contains(txt, "KES") || sixDigits.MatchString(txt) {
			t.Fatalf("deliver_sm to Carol = %q", txt)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Carol's balance never came back through the aggregator")
	}
}
