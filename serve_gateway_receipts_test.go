package main

import (
	"strings"
	"testing"
	"time"

	gosmpp "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// Issue 18: an aggregator (Kannel) that sets registered_delivery on its submit_sm gets a
// delivery receipt from the real switch once the MO is processed, with the message id of
// the submit_sm_resp, beside the switch's answer.
func TestAggregatorGetsDeliveryReceipt(t *testing.T) {
	s, addr := startSwitchWithAggregator(t, "2547")
	w := s.open(map[string]string{"type": "wallet", "msisdn": "254711000001", "name": "Zed"})
	s.deposit(w.ID, 50000, "CASHIN-Z")

	answers, receipts := make(chan string, 16), make(chan pdu.Body, 16)
	tx := &gosmpp.Transceiver{Addr: addr, User: "aggregator-x", Passwd: "agg-pw",
		Handler: func(p pdu.Body) {
			if p.Header().ID != pdu.DeliverSMID {
				return
			}
			if p.Fields()[pdufield.ESMClass].Bytes()[0]&0x3C == 0x04 {
				receipts <- p
				return
			}
			answers <- string(p.Fields()[pdufield.ShortMessage].Bytes())
		}}
	status := tx.Bind()
	defer tx.Close()
	select {
	case st := <-status:
		if st.Error() != nil {
			t.Fatalf("bind: %v", st.Error())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bind timed out")
	}
	sm, err := tx.Submit(&gosmpp.ShortMessage{Src: "254711000001", Dst: "22333", Text: pdutext.Raw("BAL"),
		Register: pdufield.FinalDeliveryReceipt})
	if err != nil {
		t.Fatalf("submit_sm: %v", err)
	}
	id := sm.RespID()
	select {
	case p := <-receipts:
		text := string(p.Fields()[pdufield.ShortMessage].Bytes())
		rid := strings.TrimRight(string(p.TLVFields()[pdutlv.TagReceiptedMessageID].Bytes()), "\x00")
		if id == "" || rid != id || !strings.HasPrefix(text, "id:"+id+" ") || !strings.Contains(text, " stat:DELIVRD ") ||
			strings.Contains(text, "BAL") {
			t.Fatalf("receipt for %q (submit_sm_resp gave %q): %q", rid, id, text)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery receipt")
	}
	select {
	case txt := <-answers:
		if !strings.Contains(txt, "KES 500.00") {
			t.Fatalf("deliver_sm = %q", txt)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no deliver_sm with the answer")
	}
}
