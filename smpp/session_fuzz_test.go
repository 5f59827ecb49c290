package smpp

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/rs/zerolog"
)

// serialize returns the wire form of p with sequence number seq.
func serialize(tb testing.TB, p pdu.Body, seq uint32) []byte {
	tb.Helper()
	p.Header().Seq = seq
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// FuzzSessionInbound feeds arbitrary bytes to an ESME session as if an SMSC sent them:
// framing, responses to outstanding requests (submit_sm, enquire_link, with and
// without a late hook), deliver_sm decoding, concatenated MO, USSD and delivery
// receipts, down to the Handler. Nothing may panic or hang.
func FuzzSessionInbound(f *testing.F) {
	mo := deliverSM("254700000001", "22333", CodingGSM7, 0, []byte("PAY 55501 150"), nil)
	part := deliverSM("254700000001", "22333", CodingGSM7, ESMClassUDHI, append([]byte{5, 0, 3, 9, 2, 1}, "first half "...), nil)
	ussd := deliverSM("254700000001", "*384#", CodingGSM7, 0, []byte("1"),
		pdutlv.Fields{tagUssdServiceOp: uint8(USSDUSSRConfirm), tagItsSessionInfo: []byte{0, 7}})
	receipt := deliverSM("254700000001", "22333", CodingGSM7, 0x04,
		[]byte("id:msg-1 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:"),
		pdutlv.Fields{tagReceiptedMessageID: pdutlv.CString("msg-1"), tagMessageState: uint8(2)})
	resp := pdu.NewSubmitSMResp()
	resp.Fields().Set(pdufield.MessageID, "msg-1")
	seeds := [][]byte{
		serialize(f, mo, 1),
		append(serialize(f, part, 2), serialize(f, ussd, 3)...),
		serialize(f, receipt, 4),
		serialize(f, resp, 1),
		append(serialize(f, resp, 2), serialize(f, pdu.NewEnquireLinkResp(), 3)...),
		serialize(f, pdu.NewEnquireLink(), 9),
		serialize(f, pdu.NewUnbind(), 9),
		{0, 0, 0, 16, 0x80, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1}, // generic_nack
		{0, 0, 0, 17, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0}, // deliver_sm cut short
		{0xff, 0xff, 0xff, 0xff},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := NewLink(LinkConfig{Name: "fuzz"}, HandlerFuncs{}, zerolog.Nop(), nil)
		near, far := net.Pipe()
		defer far.Close()
		go io.Copy(io.Discard, far) // the SMSC side swallows our answers
		s := &session{
			conn:        near,
			br:          bufio.NewReader(bytes.NewReader(data)),
			bw:          bufio.NewWriter(near),
			respTimeout: time.Second,
			pending:     make(map[uint32]*call),
			done:        make(chan struct{}),
		}
		s.pending[1] = &call{id: pdu.SubmitSMID, ch: make(chan pdu.Body, 1)}
		s.pending[2] = &call{id: pdu.SubmitSMID, ch: make(chan pdu.Body, 1), late: func(pdu.Body) {}}
		s.pending[3] = &call{id: pdu.EnquireLinkID, ch: make(chan pdu.Body, 1)}
		s.onDeliver = func(s *session, p pdu.Body, esm uint8) {
			s.respond(pdu.DeliverSMID, p.Header().Seq, l.deliver(context.Background(), p, esm, isReceipt(p, esm)))
		}
		s.readLoop() // returns at the end of data
		if s.reason() == nil {
			t.Fatal("read loop returned with the session still running")
		}
	})
}
