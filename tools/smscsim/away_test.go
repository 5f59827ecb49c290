package smscsim

import (
	"strings"
	"testing"
	"time"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// gotReceipt is a receipt deliver_sm as an ESME reads it.
type gotReceipt struct {
	esm   uint8
	id    string // receipted_message_id
	stat  string // stat: of the text
	state byte   // message_state
	text  string
}

func readReceipt(t *testing.T, p pdu.Body) gotReceipt {
	t.Helper()
	if p.Header().ID != pdu.DeliverSMID {
		t.Fatalf("got %s, want a receipt deliver_sm", p.Header().ID)
	}
	f, tlv := p.Fields(), p.TLVFields()
	r := gotReceipt{esm: fieldByte(f, pdufield.ESMClass), text: string(f[pdufield.ShortMessage].Bytes())}
	if v := tlv[pdutlv.TagReceiptedMessageID]; v != nil {
		r.id = v.String()
	}
	if v := tlv[pdutlv.TagMessageStateOption]; v != nil && len(v.Bytes()) == 1 {
		r.state = v.Bytes()[0]
	}
	for _, w := range strings.Fields(r.text) {
		if v, ok := strings.CutPrefix(w, "stat:"); ok {
			r.stat = v
		}
	}
	if !strings.HasPrefix(r.text, "id:"+r.id+" ") || !strings.HasSuffix(r.text, " text:") {
		t.Fatalf("receipt text %q for receipted_message_id %q", r.text, r.id)
	}
	return r
}

// checkReceipt checks that r reports stat on message id as SMPP 3.4 says: an
// intermediate notification (esm_class 0x20, message_state 1) for ENROUTE, an SMSC
// delivery receipt (0x04, 2) for DELIVRD.
func checkReceipt(t *testing.T, r gotReceipt, id, stat string) {
	t.Helper()
	want := gotReceipt{esm: 0x04, id: id, stat: stat, state: 2}
	if stat == "ENROUTE" {
		want.esm, want.state = 0x20, 1
	}
	if r.esm != want.esm || r.id != want.id || r.stat != want.stat || r.state != want.state {
		t.Fatalf("receipt esm_class %#x id %s stat %s state %d, want %#x %s %s %d (%q)",
			r.esm, r.id, r.stat, r.state, want.esm, want.id, want.stat, want.state, r.text)
	}
}

// checkReceipts reads one receipt per id from e and checks each reports stat on its
// id. Receipts sent after one delay may come in any order.
func checkReceipts(t *testing.T, e *esme, ids []string, stat string) {
	t.Helper()
	left := map[string]bool{}
	for _, id := range ids {
		left[id] = true
	}
	for range ids {
		r := readReceipt(t, e.next(t))
		if !left[r.id] {
			t.Fatalf("receipt for %s, want one for each of %v once", r.id, ids)
		}
		delete(left, r.id)
		checkReceipt(t, r, r.id, stat)
	}
}

// waitIdle polls until the sim keeps exactly kept MTs and every delivery is
// acknowledged.
func waitIdle(t *testing.T, s *Sim, kept int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for s.Kept("") != kept || s.Unacknowledged() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sim still busy: %d MTs kept, %d deliveries unacknowledged", s.Kept(""), s.Unacknowledged())
		}
		time.Sleep(time.Millisecond)
	}
}

// noMT fails when an MT is waiting on ch. MTs are published before submit_sm_resp,
// so once a submit returned, one that is not there was not published.
func noMT(t *testing.T, ch <-chan MT) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("MT %q reached a phone that is away", m.Text)
	default:
	}
}

// A phone that is away gets its MTs when it is back; an ESME that asked for receipts
// hears ENROUTE for each part at once and DELIVRD for each part once the phone has it.
func TestAwayPhoneGetsItsMTsWhenBack(t *testing.T) {
	tests := []struct {
		name         string
		text         string
		codec        pdutext.Codec
		long         bool
		reg          pdufield.DeliverySetting
		wantParts    int
		wantEnroute  bool
		wantDelivrd  bool
		wantMTStatus string
	}{
		{"final receipt asked", "Your code is 482913", pdutext.Raw("Your code is 482913"), false, pdufield.FinalDeliveryReceipt, 1, true, true, "DELIVRD"},
		{"no receipt asked", "BAL 1,500.00", pdutext.Raw("BAL 1,500.00"), false, pdufield.NoDeliveryReceipt, 1, false, false, "DELIVRD"},
		{"failure receipts only", "MINI", pdutext.Raw("MINI"), false, pdufield.FailureDeliveryReceipt, 1, false, false, "DELIVRD"},
		{"intermediate notifications only", "ping", pdutext.Raw("ping"), false, 0x10, 1, true, false, "DELIVRD"},
		{"long GSM, final receipt asked", longGSM, pdutext.GSM7(longGSM), true, pdufield.FinalDeliveryReceipt, 3, true, true, "DELIVRD"},
		{"long UCS-2, final and intermediate", longUCS2, pdutext.UCS2(longUCS2), true, pdufield.FinalDeliveryReceipt | 0x10, 2, true, true, "DELIVRD"},
	}
	s := mustStart(t, Config{})
	e := mustBindESME(t, s)
	mts, stop := s.Subscribe(phone)
	defer stop()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetAway(phone, true)
			s.SetAway(phone, true) // twice changes nothing
			sm := &smppcli.ShortMessage{Src: shortcode, Dst: phone, Text: tt.codec, Register: tt.reg}
			ids := submitMT(t, e, sm, tt.long)
			if len(ids) != tt.wantParts || ids[0] == "" {
				t.Fatalf("submit_sm_resp ids %v, want %d", ids, tt.wantParts)
			}
			noMT(t, mts)
			if n := s.Kept(phone); n != 1 {
				t.Fatalf("Kept(phone) = %d, want 1", n)
			}
			if h := s.MTs(phone); len(h) > 0 && h[len(h)-1].ID == ids[0] {
				t.Fatal("a kept MT is in the history already")
			}
			if tt.wantEnroute {
				checkReceipts(t, e, ids, "ENROUTE")
			}
			waitIdle(t, s, 1) // no other receipt comes while the phone is away
			if len(e.got) != 0 {
				t.Fatalf("%d more deliveries while the phone is away", len(e.got))
			}

			s.SetAway(phone, false)
			m := nextMT(t, mts)
			if m.Text != tt.text || m.Parts != tt.wantParts || m.Status != tt.wantMTStatus || m.ID != ids[0] || len(m.IDs) != len(ids) {
				t.Fatalf("MT %+v, want %q in %d parts with ids %v", m, tt.text, tt.wantParts, ids)
			}
			if h := s.MTs(phone); h[len(h)-1].ID != m.ID {
				t.Fatal("the delivered MT is not in the history")
			}
			if tt.wantDelivrd {
				checkReceipts(t, e, ids, "DELIVRD")
			}
			waitIdle(t, s, 0)
			if len(e.got) != 0 {
				t.Fatalf("%d unexpected deliveries after the phone came back", len(e.got))
			}
		})
	}
}

// Parts of a concatenated MT that straddle the phone's return: the parts kept are
// delivered (and receipted) when it is back, and the MT is published when its last
// part arrives.
func TestAwayPhoneConcatenatedMTCompletedAfterReturn(t *testing.T) {
	s := mustStart(t, Config{})
	e := dialRawESME(t, s)
	mts, stop := s.Subscribe(phone)
	defer stop()
	// deliveries reads PDUs until n submit_sm_resp and r receipts have come,
	// acknowledging receipts; submit_sm_resp and receipts may interleave.
	deliveries := func(n, r int) (respIDs []string, receipts []gotReceipt) {
		t.Helper()
		for len(respIDs) < n || len(receipts) < r {
			p := e.read(t)
			switch p.Header().ID {
			case pdu.SubmitSMRespID:
				if p.Header().Status != 0 {
					t.Fatalf("submit_sm_resp status %v", p.Header().Status)
				}
				respIDs = append(respIDs, fieldString(p.Fields(), pdufield.MessageID))
			case pdu.DeliverSMID:
				receipts = append(receipts, readReceipt(t, p))
				e.ack(t, p, 0)
			default:
				t.Fatalf("unexpected %s", p.Header().ID)
			}
		}
		return respIDs, receipts
	}
	submitPart := func(seq uint8, text string) {
		t.Helper()
		p := pdu.NewSubmitSM(pdutlv.Fields{
			pdutlv.TagSarMsgRefNum:     []byte{0x00, 0x42},
			pdutlv.TagSarTotalSegments: uint8(2),
			pdutlv.TagSarSegmentSeqnum: seq,
		})
		p.Fields().Set(pdufield.SourceAddr, shortcode)
		p.Fields().Set(pdufield.DestinationAddr, phone)
		p.Fields().Set(pdufield.RegisteredDelivery, uint8(pdufield.FinalDeliveryReceipt))
		p.Fields().Set(pdufield.ShortMessage, text)
		e.write(t, p)
	}

	s.SetAway(phone, true)
	submitPart(1, "Hello ")
	ids, rs := deliveries(1, 1)
	checkReceipt(t, rs[0], ids[0], "ENROUTE")
	if n := s.Kept(phone); n != 0 {
		t.Fatalf("Kept = %d for an incomplete MT, want 0", n)
	}

	s.SetAway(phone, false)
	_, rs = deliveries(0, 1)
	checkReceipt(t, rs[0], ids[0], "DELIVRD")
	noMT(t, mts)

	submitPart(2, "world")
	ids2, rs := deliveries(1, 1)
	checkReceipt(t, rs[0], ids2[0], "DELIVRD")
	if m := nextMT(t, mts); m.Text != "Hello world" || m.Parts != 2 || m.ID != ids[0] || len(m.IDs) != 2 || m.IDs[1] != ids2[0] {
		t.Fatalf("MT %+v, want both parts with ids %s %s", m, ids[0], ids2[0])
	}
	waitIdle(t, s, 0)
}

// An unreachable phone gets UNDELIV even while away: nothing is kept for it.
func TestAwayAndUnreachableIsUndeliverable(t *testing.T) {
	s := mustStart(t, Config{})
	e := mustBindESME(t, s)
	s.SetAway(phone, true)
	s.SetUnreachable(phone, true)
	sm := &smppcli.ShortMessage{Src: shortcode, Dst: phone, Text: pdutext.Raw("x"), Register: pdufield.FinalDeliveryReceipt}
	if _, err := e.Submit(sm); err != nil {
		t.Fatal(err)
	}
	r := readReceipt(t, e.next(t))
	if r.esm != 0x04 || r.stat != "UNDELIV" || r.state != 5 || r.id != sm.RespID() {
		t.Fatalf("receipt %+v, want UNDELIV for %s", r, sm.RespID())
	}
	if n := s.Kept(""); n != 0 {
		t.Fatalf("Kept = %d, want 0", n)
	}
	s.SetAway(phone, false)
	waitIdle(t, s, 0)
	if len(e.got) != 0 {
		t.Fatal("a receipt came for an undeliverable MT after the phone was back")
	}
}

// Unacknowledged counts receipts waiting for their delay and deliveries an ESME has
// not acknowledged; Kept counts MTs per phone.
func TestBacklogCounts(t *testing.T) {
	s := mustStart(t, Config{ReceiptDelay: time.Hour})
	other := "254700000002"
	s.SetAway(phone, true)
	s.SetAway(other, true)
	e := dialRawESME(t, s)
	for i, to := range []string{phone, phone, other} {
		p := pdu.NewSubmitSM(nil)
		p.Header().Seq = uint32(i + 1)
		p.Fields().Set(pdufield.SourceAddr, shortcode)
		p.Fields().Set(pdufield.DestinationAddr, to)
		p.Fields().Set(pdufield.RegisteredDelivery, uint8(pdufield.FinalDeliveryReceipt))
		p.Fields().Set(pdufield.ShortMessage, "hi")
		e.write(t, p)
		if r := e.read(t); r.Header().ID != pdu.SubmitSMRespID {
			t.Fatalf("got %s", r.Header().ID)
		}
	}
	if s.Kept(phone) != 2 || s.Kept(other) != 1 || s.Kept("") != 3 {
		t.Fatalf("Kept: %d %d %d, want 2 1 3", s.Kept(phone), s.Kept(other), s.Kept(""))
	}
	if n := s.Unacknowledged(); n != 3 { // three ENROUTE waiting for their delay
		t.Fatalf("Unacknowledged = %d, want 3", n)
	}
	if err := s.SendMO(ctxT(t), "254700000003", shortcode, "BAL"); err != nil {
		t.Fatal(err)
	}
	mo := e.read(t) // held unacknowledged
	if n := s.Unacknowledged(); n != 4 {
		t.Fatalf("Unacknowledged = %d with an MO in flight, want 4", n)
	}
	s.SetAway(phone, false)
	if s.Kept(phone) != 0 || s.Kept("") != 1 {
		t.Fatalf("Kept after return: %d %d, want 0 1", s.Kept(phone), s.Kept(""))
	}
	if n := s.Unacknowledged(); n != 6 { // and two DELIVRD owed
		t.Fatalf("Unacknowledged = %d after return, want 6", n)
	}
	e.ack(t, mo, 0)
	deadline := time.Now().Add(waitLimit)
	for s.Unacknowledged() != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("Unacknowledged = %d after the MO's ack, want 5", s.Unacknowledged())
		}
		time.Sleep(time.Millisecond)
	}
}
