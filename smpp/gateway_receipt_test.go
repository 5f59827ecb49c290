package smpp_test

// Delivery receipts owed to an ESME bound to the Gateway (issue 18): Kannel, bound as an
// aggregator with registered_delivery set, kept "DLR: 1 queued" forever. A real ESME
// (go-smpp) binds over loopback; the store is real SQLite.

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	"github.com/rs/zerolog"
)

// receipt is a delivery receipt as the ESME reads it.
type receipt struct {
	id, state, text, from, to string
	esm                       uint8
}

// expectReceipt waits for the next deliver_sm and requires it to be a delivery receipt.
func expectReceipt(t testing.TB, dl <-chan pdu.Body) receipt {
	t.Helper()
	select {
	case p := <-dl:
		f, tlv := p.Fields(), p.TLVFields()
		r := receipt{
			text: string(f[pdufield.ShortMessage].Bytes()),
			from: f[pdufield.SourceAddr].String(), to: f[pdufield.DestinationAddr].String(),
			esm: f[pdufield.ESMClass].Bytes()[0],
		}
		if r.esm != 0x04 {
			t.Fatalf("deliver_sm with esm_class 0x%02x, want a receipt (0x04): %q", r.esm, r.text)
		}
		if v, ok := tlv[pdutlv.TagReceiptedMessageID]; ok {
			r.id = strings.TrimRight(string(v.Bytes()), "\x00")
		}
		if v, ok := tlv[pdutlv.TagMessageStateOption]; ok && len(v.Bytes()) == 1 {
			r.state = map[byte]string{2: "DELIVRD", 3: "EXPIRED", 5: "UNDELIV", 8: "REJECTD"}[v.Bytes()[0]]
		}
		return r
	case <-time.After(waitLimit):
		t.Fatal("no delivery receipt reached the ESME")
		return receipt{}
	}
}

// check requires r to report message id with stat, in the TLVs and in the text.
func (r receipt) check(t testing.TB, id, stat string) {
	t.Helper()
	if r.id != id || r.state != stat {
		t.Fatalf("receipt TLVs: id %q state %q, want %q %s", r.id, r.state, id, stat)
	}
	if !strings.HasPrefix(r.text, "id:"+id+" sub:001 dlvrd:") || !strings.Contains(r.text, " stat:"+stat+" err:") ||
		!strings.HasSuffix(r.text, " text:") {
		t.Fatalf("receipt text %q", r.text)
	}
}

func submitRD(t testing.TB, tx *smppcli.Transmitter, from, text string, rd pdufield.DeliverySetting) (string, error) {
	t.Helper()
	sm, err := tx.Submit(&smppcli.ShortMessage{Src: from, Dst: shortcode, Text: pdutext.Raw(text), Register: rd})
	if err != nil {
		return "", err
	}
	return sm.RespID(), nil
}

// An ESME that asks for a receipt gets exactly one, DELIVRD, with the id that the
// submit_sm_resp gave, from the shortcode to the phone, and never the MO's text (it may
// hold a code). Without registered_delivery, or for a refused submit_sm (which has no
// message id, SMPP 3.4 section 4.4.2), no receipt comes. Receipts go out in the order
// they became owed, so a receipt that should not exist would arrive before the next.
func TestGatewayReceiptDelivered(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, _ := mustStore(t)
		sink := newMOSink()
		g := startGateway(t, db, sink, nil)
		agg := mustBind(t, g.Addr(), "agg-x", "secret-x")
		tx := &agg.trx.Transmitter

		if _, err := submitRD(t, tx, "254700000001", "BAL", pdufield.NoDeliveryReceipt); err != nil {
			t.Fatal(err)
		}
		sink.take(t)
		// Refused: outside the account's prefixes.
		if _, err := submitRD(t, tx, "254800000001", "BAL", pdufield.FinalDeliveryReceipt); statusOf(err) != 0x0A {
			t.Fatalf("submit_sm from outside the prefixes: %v", err)
		}
		id, err := submitRD(t, tx, "254700000001", "123456", pdufield.FinalDeliveryReceipt)
		if err != nil || id == "" {
			t.Fatalf("submit_sm: %q %v", id, err)
		}
		sink.take(t)
		r := expectReceipt(t, agg.dl)
		r.check(t, id, "DELIVRD")
		if r.from != shortcode || r.to != "254700000001" || strings.Contains(r.text, "123456") {
			t.Fatalf("receipt %s -> %s %q", r.from, r.to, r.text)
		}

		id2, err := submitRD(t, tx, "254700000002", "MINI", pdufield.FinalDeliveryReceipt)
		if err != nil {
			t.Fatal(err)
		}
		sink.take(t)
		expectReceipt(t, agg.dl).check(t, id2, "DELIVRD")
		agg.noDeliver(t, "after the last receipt")
	})
}

// Every part of a concatenated MO gets its own receipt once the whole message is
// processed; a part whose message never completes gets UNDELIV once the reassembly
// gave up on it.
func TestGatewayReceiptConcatenated(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, _ := mustStore(t)
		sink := newMOSink()
		clock := &testClock{}
		g := startGatewayClock(t, db, sink, clock)
		agg := mustBind(t, g.Addr(), "agg-x", "secret-x")

		long := strings.Repeat("MINI please, ", 20)
		parts, err := agg.trx.SubmitLongMsg(&smppcli.ShortMessage{Src: "254700000004", Dst: shortcode,
			Text: pdutext.Raw(long), Register: pdufield.FinalDeliveryReceipt})
		if err != nil || len(parts) < 2 {
			t.Fatalf("%d parts, %v", len(parts), err)
		}
		sink.take(t)
		want := map[string]bool{}
		for i := range parts {
			want[parts[i].RespID()] = true
		}
		for range parts {
			r := expectReceipt(t, agg.dl)
			if !want[r.id] {
				t.Fatalf("receipt for %q, want one of %v", r.id, want)
			}
			delete(want, r.id)
			r.check(t, r.id, "DELIVRD")
		}

		// Part 1 of 2 alone: acknowledged, then dropped by the reassembly.
		sm, err := agg.trx.Submit(&smppcli.ShortMessage{Src: "254700000005", Dst: shortcode, Text: pdutext.Raw("PAY 555"),
			Register: pdufield.FinalDeliveryReceipt, TLVFields: pdutlv.Fields{
				pdutlv.TagSarMsgRefNum: []byte{0, 7}, pdutlv.TagSarTotalSegments: uint8(2), pdutlv.TagSarSegmentSeqnum: uint8(1)}})
		if err != nil {
			t.Fatal(err)
		}
		agg.noDeliver(t, "for a part still awaiting the rest")
		clock.advance(10 * time.Minute)
		smpp.SweepGatewayReceipts(g)
		expectReceipt(t, agg.dl).check(t, sm.RespID(), "UNDELIV")
	})
}

// Receipts owed while the ESME has no session that can receive wait in the database:
// they reach it when it binds again, after a restart of the gateway too; those older
// than the receipt age limit are dropped.
func TestGatewayReceiptsOwedAcrossRestart(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, _ := mustStore(t)
		sink := newMOSink()
		clock := &testClock{}
		g := startGatewayClock(t, db, sink, clock)

		// A transmitter cannot receive: the receipts wait.
		tx := &smppcli.Transmitter{Addr: g.Addr(), User: "agg-x", Passwd: "secret-x", RespTimeout: 5 * time.Second, BindInterval: time.Hour}
		t.Cleanup(func() { tx.Close() })
		if st := <-tx.Bind(); st.Status() != smppcli.Connected {
			t.Fatalf("bind: %v", st.Error())
		}
		old, err := submitRD(t, tx, "254700000001", "BAL", pdufield.FinalDeliveryReceipt)
		if err != nil {
			t.Fatal(err)
		}
		sink.take(t)
		clock.advance(73 * time.Hour) // the first is now too old to be worth sending
		var ids []string
		for _, from := range []string{"254700000002", "254700000003"} {
			id, err := submitRD(t, tx, from, "BAL", pdufield.FinalDeliveryReceipt)
			if err != nil {
				t.Fatal(err)
			}
			sink.take(t)
			ids = append(ids, id)
		}
		tx.Close()
		g.Close()

		g2, err := smpp.NewGateway(gatewayConfig(), db, sink, zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		smpp.SetGatewayClock(g2, clock.now)
		if err := g2.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g2.Close() })
		smpp.SweepGatewayReceipts(g2)

		dl := make(chan pdu.Body, 10)
		rx := &smppcli.Receiver{Addr: g2.Addr(), User: "agg-x", Passwd: "secret-x", BindInterval: time.Hour,
			Handler: func(p pdu.Body) {
				if p.Header().ID == pdu.DeliverSMID {
					dl <- p
				}
			}}
		t.Cleanup(func() { rx.Close() })
		if st := <-rx.Bind(); st.Status() != smppcli.Connected {
			t.Fatalf("bind receiver: %v", st.Error())
		}
		for _, id := range ids {
			if id == old {
				t.Fatal("ids repeat across restarts")
			}
			expectReceipt(t, dl).check(t, id, "DELIVRD")
		}
		select {
		case p := <-dl:
			t.Fatalf("a receipt beyond those owed: %q", p.Fields()[pdufield.ShortMessage])
		default:
		}
	})
}

// gatewayConfig is startGateway's configuration.
func gatewayConfig() smpp.GatewayConfig {
	return smpp.GatewayConfig{
		Listen: "127.0.0.1:0", Shortcode: shortcode, USSDServiceCode: "*384#", RespTimeout: 2 * time.Second,
		Accounts: []smpp.GatewayAccount{
			{SystemID: "agg-x", Password: "secret-x", MaxBinds: 2, Prefixes: []string{"2547"}},
			{SystemID: "agg-y", Password: "secret-y", Prefixes: []string{"2547"}},
			{SystemID: "agg-off"},
		},
	}
}

// startGatewayClock is startGateway on a test clock.
func startGatewayClock(t testing.TB, db *store.DB, h smpp.Handler, clock *testClock) *smpp.Gateway {
	t.Helper()
	g, err := smpp.NewGateway(gatewayConfig(), db, h, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	smpp.SetGatewayClock(g, clock.now)
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// readPDU reads and decodes the next PDU from the raw connection.
func (r *rawConn) readPDU(t testing.TB) pdu.Body {
	t.Helper()
	var hb [4]byte
	if _, err := io.ReadFull(r.br, hb[:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(hb[:]))
	copy(frame, hb[:])
	if _, err := io.ReadFull(r.br, frame[4:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	p, err := pdu.Decode(bytes.NewReader(frame))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return p
}

// A receipt the ESME answers with an error is tried again later, and does not hold up
// the receipts behind it.
func TestGatewayReceiptRefusedByESMERetried(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, _ := mustStore(t)
		sink := newMOSink()
		clock := &testClock{}
		g := startGatewayClock(t, db, sink, clock)
		tx := &smppcli.Transmitter{Addr: g.Addr(), User: "agg-x", Passwd: "secret-x", RespTimeout: 5 * time.Second, BindInterval: time.Hour}
		t.Cleanup(func() { tx.Close() })
		if st := <-tx.Bind(); st.Status() != smppcli.Connected {
			t.Fatalf("bind: %v", st.Error())
		}
		var ids []string
		for _, from := range []string{"254700000001", "254700000002"} {
			id, err := submitRD(t, tx, from, "BAL", pdufield.FinalDeliveryReceipt)
			if err != nil {
				t.Fatal(err)
			}
			sink.take(t)
			ids = append(ids, id)
		}
		// Both receipts recorded before a receiver binds, so that they go in the order their
		// messages were acknowledged (not in the order the records happened to be written).
		awaitReceipts(t, db, "agg-x", 2)

		rc := dialRaw(t, g.Addr())
		rc.bind(t, "agg-x", "secret-x")
		// next answers the next receipt with status and returns the id it reported.
		next := func(status uint32) string {
			t.Helper()
			p := rc.readPDU(t)
			if p.Header().ID != pdu.DeliverSMID {
				t.Fatalf("got %s, want a receipt", p.Header().ID)
			}
			resp := pdu.NewDeliverSMResp()
			resp.Header().Status = pdu.Status(status)
			rc.send(t, resp, p.Header().Seq)
			return strings.TrimRight(string(p.TLVFields()[pdutlv.TagReceiptedMessageID].Bytes()), "\x00")
		}
		if id := next(0x64); id != ids[0] { // ESME_RX_T_APPN
			t.Fatalf("first receipt for %q, want %q", id, ids[0])
		}
		if id := next(0); id != ids[1] {
			t.Fatalf("second receipt for %q, want %q", id, ids[1])
		}

		// A new receipt wakes the sender; by then the refused one is due again, and goes first.
		clock.advance(time.Minute)
		id3, err := submitRD(t, tx, "254700000003", "BAL", pdufield.FinalDeliveryReceipt)
		if err != nil {
			t.Fatal(err)
		}
		sink.take(t)
		for _, want := range []string{ids[0], id3} {
			if id := next(0); id != want {
				t.Fatalf("receipt for %q, want %q", id, want)
			}
		}
	})
}

// A receipt sent on a bind that drops before the ESME acknowledged it is sent again
// when the ESME binds again.
func TestGatewayReceiptUnacknowledgedSentAgainAfterDrop(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, _ := mustStore(t)
		sink := newMOSink()
		g := startGateway(t, db, sink, nil)
		rc := dialRaw(t, g.Addr())
		rc.bind(t, "agg-x", "secret-x")
		sm := pdu.NewSubmitSM(nil)
		f := sm.Fields()
		f.Set(pdufield.SourceAddr, "254700000001")
		f.Set(pdufield.DestinationAddr, shortcode)
		f.Set(pdufield.RegisteredDelivery, uint8(pdufield.FinalDeliveryReceipt))
		f.Set(pdufield.ShortMessage, []byte("BAL"))
		rc.send(t, sm, 2)
		resp := rc.readPDU(t)
		if resp.Header().ID != pdu.SubmitSMRespID || resp.Header().Status != 0 {
			t.Fatalf("got %s 0x%x", resp.Header().ID, uint32(resp.Header().Status))
		}
		id := resp.Fields()[pdufield.MessageID].String()
		sink.take(t)
		if p := rc.readPDU(t); p.Header().ID != pdu.DeliverSMID {
			t.Fatalf("got %s, want the receipt", p.Header().ID)
		}
		rc.c.Close() // gone without answering it
		waitSessions(t, g, "server:agg-x", 0)

		agg := mustBind(t, g.Addr(), "agg-x", "secret-x")
		expectReceipt(t, agg.dl).check(t, id, "DELIVRD")
	})
}

// awaitReceipts waits until n receipts of systemID are recorded as due (their messages'
// outcome known): the gateway records one once the switch has taken the message, just
// after the sink saw it, so a test that needs them in order waits for the records.
func awaitReceipts(t *testing.T, db *store.DB, systemID string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM smpp_server_receipts WHERE system_id = ? AND stat <> ''`,
			systemID).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d receipts of %s recorded, want %d", got, systemID, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
