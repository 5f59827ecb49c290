package smpp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestLinkBindModes(t *testing.T) {
	tests := []struct {
		name  string
		bind  string
		binds []pdu.ID
	}{
		{"transceiver", BindTransceiver, []pdu.ID{pdu.BindTransceiverID}},
		{"default is transceiver", "", []pdu.ID{pdu.BindTransceiverID}},
		{"transmitter and receiver", BindTxRx, []pdu.ID{pdu.BindTransmitterID, pdu.BindReceiverID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestSMSC(t, "secret")
			rec := newRecorder()
			reg := prometheus.NewRegistry()
			l := NewLink(LinkConfig{Name: "carrier-a", Address: srv.addr(), SystemID: "payswitch", Password: "secret",
				Bind: tc.bind, EnquireLink: time.Minute, RespTimeout: 5 * time.Second}, rec, zerolog.Nop(), reg)
			if l.State() != StateDown {
				t.Fatalf("state before Start %q", l.State())
			}
			l.Start(context.Background())
			waitState(t, l, StateBound)

			srv.mu.Lock()
			var got []pdu.ID
			for _, b := range srv.binds {
				got = append(got, b.id)
			}
			srv.mu.Unlock()
			if len(got) != len(tc.binds) {
				t.Fatalf("binds %v, want %v", got, tc.binds)
			}
			for i := range got {
				if got[i] != tc.binds[i] {
					t.Fatalf("binds %v, want %v", got, tc.binds)
				}
			}
			if v := gauge(t, reg, "payswitch_smpp_link_up", "carrier-a"); v != 1 {
				t.Fatalf("link_up %v while bound", v)
			}

			ids, err := l.Submit(context.Background(), MT{To: "+254700000001", From: "22333", Text: "Your balance is KES 10.00"})
			if err != nil || len(ids) != 1 || ids[0] == "" {
				t.Fatalf("Submit: %v %v", ids, err)
			}
			if sub := srv.submitted(); len(sub) != 1 || sub[0].dst != "254700000001" || sub[0].src != "22333" {
				t.Fatalf("SMSC got %+v", sub)
			}

			st := srv.mustDeliver(t, deliverSM("+254700000001", "22333", 0, 0, []byte("BAL"), nil))
			if st != StatusOK {
				t.Fatalf("deliver_sm_resp status 0x%x", st)
			}
			m := rec.takeMO(t)
			if m.Text != "BAL" || m.From != "254700000001" || m.To != "22333" || m.Link != "carrier-a" || m.USSD != nil {
				t.Fatalf("MO %+v", m)
			}

			l.Close()
			if l.State() != StateClosed {
				t.Fatalf("state after Close %q", l.State())
			}
			srv.waitFor("unbind", func() bool { return srv.unbinds == len(tc.binds) })
			if v := gauge(t, reg, "payswitch_smpp_link_up", "carrier-a"); v != 0 {
				t.Fatalf("link_up %v after Close", v)
			}
			if _, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "x"}); !errors.Is(err, ErrNotBound) {
				t.Fatalf("Submit after Close: %v", err)
			}
		})
	}
}

// gauge reads one series of a gauge or counter from reg by its first label value.
func gauge(t *testing.T, reg *prometheus.Registry, name, link string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			vals := map[string]string{}
			for _, lp := range m.GetLabel() {
				vals[lp.GetName()] = lp.GetValue()
			}
			if vals["link"] != link {
				continue
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if vals[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	return -1
}

func TestLinkWrongPasswordIsRetried(t *testing.T) {
	srv := newTestSMSC(t, "right")
	l := startLink(t, srv, LinkConfig{Password: "wrong"}, newRecorder())
	srv.waitFor("three refused binds", func() bool { return len(srv.binds) >= 3 })
	srv.mu.Lock()
	for _, b := range srv.binds {
		if b.ok {
			t.Fatal("a wrong password was accepted")
		}
	}
	srv.mu.Unlock()
	if st := l.State(); st == StateBound {
		t.Fatalf("state %q with a wrong password", st)
	}
	_, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "x"})
	if !errors.Is(err, ErrNotBound) || !IsTemporary(err) {
		t.Fatalf("Submit while not bound: %v (temporary %v)", err, IsTemporary(err))
	}

	// The carrier fixes the account: the link binds on its next attempt.
	srv.mu.Lock()
	srv.password = "wrong"
	srv.mu.Unlock()
	waitState(t, l, StateBound)
}

func TestLinkMO(t *testing.T) {
	ucs2 := ucs2Bytes
	sar := func(ref uint16, total, seq uint8) pdutlv.Fields {
		r := make([]byte, 2)
		binary.BigEndian.PutUint16(r, ref)
		return pdutlv.Fields{
			pdutlv.TagSarMsgRefNum: r, pdutlv.TagSarTotalSegments: []byte{total}, pdutlv.TagSarSegmentSeqnum: []byte{seq},
		}
	}
	long := "SEND 254700000002 1500 " + strings.Repeat("na ", 60)
	longUCS2 := strings.Repeat("Ninakutumia pesa 🙏 ", 8)
	tests := []struct {
		name     string
		delivers []pdu.Body
		want     string
		ussd     *USSDInfo
	}{
		{"gsm", []pdu.Body{deliverSM("254700000001", "22333", 0x00, 0, []byte("PAY 55501 100"), nil)}, "PAY 55501 100", nil},
		{"latin-1", []pdu.Body{deliverSM("254700000001", "22333", 0x03, 0, []byte("OK caf\xe9"), nil)}, "OK café", nil},
		{"ucs-2", []pdu.Body{deliverSM("254700000001", "22333", 0x08, 0, ucs2("Salio 💰"), nil)}, "Salio 💰", nil},
		{"message_payload", []pdu.Body{deliverSM("254700000001", "22333", 0x00, 0, nil,
			pdutlv.Fields{pdutlv.TagMessagePayload: []byte(long)})}, long, nil},
		{"concatenated UDH out of order", segmentsAsDeliver(Encode(long, 77), []int{1, 0}), long, nil},
		{"concatenated UCS-2 UDH", segmentsAsDeliver(Encode(longUCS2, 3), []int{2, 0, 1}), longUCS2, nil},
		{"16-bit UDH", []pdu.Body{
			deliverSM("254700000001", "22333", 0, 0x40, append([]byte{6, 8, 4, 1, 2, 2, 2}, "world"...), nil),
			deliverSM("254700000001", "22333", 0, 0x40, append([]byte{6, 8, 4, 1, 2, 2, 1}, "hello "...), nil),
		}, "hello world", nil},
		{"SAR", []pdu.Body{
			deliverSM("254700000001", "22333", 0, 0, []byte("BA"), sar(513, 2, 1)),
			deliverSM("254700000001", "22333", 0, 0, []byte("L"), sar(513, 2, 2)),
		}, "BAL", nil},
		{"USSD", []pdu.Body{deliverSM("254700000001", "*384#", 0, 0, []byte("1"),
			pdutlv.Fields{pdutlv.TagUssdServiceOp: []byte{USSDUSSRConfirm}, pdutlv.TagItsSessionInfo: []byte{0x12, 0x34}})},
			"1", &USSDInfo{ServiceOp: USSDUSSRConfirm, SessionInfo: []byte{0x12, 0x34}}},
	}
	srv := newTestSMSC(t, "pw")
	rec := newRecorder()
	l := startLink(t, srv, LinkConfig{Password: "pw"}, rec)
	waitState(t, l, StateBound)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, p := range tc.delivers {
				if st := srv.mustDeliver(t, p); st != StatusOK {
					t.Fatalf("deliver %d answered 0x%x", i, st)
				}
			}
			m := rec.takeMO(t)
			if m.Text != tc.want {
				t.Fatalf("text %q, want %q", m.Text, tc.want)
			}
			if (m.USSD == nil) != (tc.ussd == nil) ||
				(m.USSD != nil && (m.USSD.ServiceOp != tc.ussd.ServiceOp || string(m.USSD.SessionInfo) != string(tc.ussd.SessionInfo))) {
				t.Fatalf("USSD %+v, want %+v", m.USSD, tc.ussd)
			}
		})
	}
}

// segmentsAsDeliver turns Encode's output into deliver_sm in the given order.
func segmentsAsDeliver(segs []Segment, order []int) []pdu.Body {
	var out []pdu.Body
	for _, i := range order {
		s := segs[i]
		out = append(out, deliverSM("254700000001", "22333", s.DataCoding, s.ESMClass, s.ShortMessage, nil))
	}
	return out
}

func TestLinkHandlerErrorAsksForRedelivery(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	rec := newRecorder()
	l := startLink(t, srv, LinkConfig{Password: "pw"}, rec)
	waitState(t, l, StateBound)

	t.Run("whole message", func(t *testing.T) {
		rec.failNext(1)
		p := deliverSM("254700000001", "22333", 0, 0, []byte("BAL"), nil)
		if st := srv.mustDeliver(t, p); st != StatusRxTempAppn {
			t.Fatalf("failed handler answered 0x%x, want ESME_RX_T_APPN", st)
		}
		if len(rec.mos) != 0 {
			t.Fatal("a failed MO was recorded")
		}
		if st := srv.mustDeliver(t, p); st != StatusOK {
			t.Fatalf("redelivery answered 0x%x", st)
		}
		if m := rec.takeMO(t); m.Text != "BAL" {
			t.Fatalf("MO %+v", m)
		}
	})

	t.Run("last part of a concatenated message", func(t *testing.T) {
		text := strings.Repeat("MINI ", 40)
		parts := segmentsAsDeliver(Encode(text, 9), []int{0, 1})
		if st := srv.mustDeliver(t, parts[0]); st != StatusOK {
			t.Fatalf("first part answered 0x%x", st)
		}
		rec.failNext(1)
		if st := srv.mustDeliver(t, parts[1]); st != StatusRxTempAppn {
			t.Fatalf("failed last part answered 0x%x", st)
		}
		// The SMSC redelivers only the last part; the first is still held.
		if st := srv.mustDeliver(t, parts[1]); st != StatusOK {
			t.Fatalf("redelivered last part answered 0x%x", st)
		}
		if m := rec.takeMO(t); m.Text != text {
			t.Fatalf("text %q", m.Text)
		}
	})

	t.Run("receipt", func(t *testing.T) {
		rec.failNext(1)
		p := deliverSM("254700000001", "22333", 0, 0x04, []byte("id:msg-1 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:"), nil)
		if st := srv.mustDeliver(t, p); st != StatusRxTempAppn {
			t.Fatalf("failed receipt handler answered 0x%x", st)
		}
		if st := srv.mustDeliver(t, p); st != StatusOK {
			t.Fatalf("redelivered receipt answered 0x%x", st)
		}
		if len(rec.receipts) != 1 {
			t.Fatalf("%d receipts recorded", len(rec.receipts))
		}
		<-rec.receipts
	})
}

func TestLinkRefusesUndecodableMO(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	rec := newRecorder()
	l := startLink(t, srv, LinkConfig{Password: "pw"}, rec)
	waitState(t, l, StateBound)
	tests := []struct {
		name string
		p    pdu.Body
	}{
		{"odd UCS-2", deliverSM("254700000001", "22333", 0x08, 0, []byte{0, 'A', 0}, nil)},
		{"UDH longer than message", deliverSM("254700000001", "22333", 0x00, 0x40, []byte{9, 0, 3, 1}, nil)},
		{"UDH flag on empty message", deliverSM("254700000001", "22333", 0x00, 0x40, nil, nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if st := srv.mustDeliver(t, tc.p); st != StatusRxPermAppn {
				t.Fatalf("answered 0x%x, want ESME_RX_P_APPN", st)
			}
		})
	}
	if len(rec.mos) != 0 {
		t.Fatal("garbage reached the handler")
	}
	if l.State() != StateBound {
		t.Fatal("garbage broke the link")
	}
}

func TestLinkReceipts(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	rec := newRecorder()
	l := startLink(t, srv, LinkConfig{Name: "carrier-a", Password: "pw"}, rec)
	waitState(t, l, StateBound)
	tests := []struct {
		name string
		esm  uint8
		text string
		tlvs pdutlv.Fields
		want Receipt
	}{
		{"delivered", 0x04, "id:0A1B2C sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:Your code",
			nil, Receipt{Link: "carrier-a", MessageID: "0A1B2C", Status: "DELIVRD", Err: "000"}},
		{"undeliverable lower case", 0x04, "ID:77 SUB:001 DLVRD:000 SUBMIT DATE:2401011200 DONE DATE:2401011201 STAT:undeliv ERR:001",
			nil, Receipt{Link: "carrier-a", MessageID: "77", Status: "UNDELIV", Err: "001"}},
		{"TLVs win over text", 0x04, "id:999 stat:DELIVRD err:0",
			pdutlv.Fields{pdutlv.TagReceiptedMessageID: pdutlv.CString("msg-5"), pdutlv.Tag(0x0427): []byte{5}},
			Receipt{Link: "carrier-a", MessageID: "msg-5", Status: "UNDELIV", Err: "0"}},
		{"receipted_message_id without esm_class", 0x00, "",
			pdutlv.Fields{pdutlv.TagReceiptedMessageID: pdutlv.CString("msg-6"), pdutlv.Tag(0x0427): []byte{8}},
			Receipt{Link: "carrier-a", MessageID: "msg-6", Status: "REJECTD"}},
		{"intermediate notification", 0x20, "id:8 stat:ENROUTE", nil,
			Receipt{Link: "carrier-a", MessageID: "8", Status: "ENROUTE"}},
		{"no status at all", 0x04, "id:9", nil, Receipt{Link: "carrier-a", MessageID: "9", Status: "UNKNOWN"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := deliverSM("254700000001", "22333", 0, tc.esm, []byte(tc.text), tc.tlvs)
			if st := srv.mustDeliver(t, p); st != StatusOK {
				t.Fatalf("answered 0x%x", st)
			}
			if len(rec.receipts) != 1 || len(rec.mos) != 0 {
				t.Fatalf("%d receipts and %d MO recorded", len(rec.receipts), len(rec.mos))
			}
			if got := <-rec.receipts; got != tc.want {
				t.Fatalf("receipt %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLinkSubmitLongUCS2(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	l := startLink(t, srv, LinkConfig{Password: "pw"}, newRecorder())
	waitState(t, l, StateBound)
	text := strings.Repeat("Umelipa KES 1,500.00 kwa Mama Mboga 🙏 ", 4) // ~156 UTF-16 units: 3 parts
	ids, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: text, Receipt: true})
	if err != nil {
		t.Fatal(err)
	}
	subs := srv.submitted()
	if len(subs) != 3 || len(ids) != 3 {
		t.Fatalf("%d submit_sm and %d ids, want 3", len(subs), len(ids))
	}
	r := NewReassembler(time.Minute)
	var got string
	for i, s := range subs {
		if s.dataCoding != CodingUCS2 || s.esmClass != ESMClassUDHI || s.register != 1 {
			t.Fatalf("part %d: coding 0x%x esm 0x%x registered_delivery %d", i, s.dataCoding, s.esmClass, s.register)
		}
		if len(s.sm) > 140 || s.sm[0] != 5 || s.sm[4] != 3 || s.sm[5] != byte(i+1) || s.sm[3] != subs[0].sm[3] {
			t.Fatalf("part %d: %d octets, UDH % x", i, len(s.sm), s.sm[:6])
		}
		p, err := Decode(s.dataCoding, s.esmClass, s.sm, nil)
		if err != nil {
			t.Fatal(err)
		}
		if text, ok := r.Add("x", p, time.Now()); ok {
			got = text
		}
	}
	if got != text {
		t.Fatalf("the handset would show %q", got)
	}
	if ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("ids %v", ids)
	}
}

func TestLinkSubmitUSSD(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	l := startLink(t, srv, LinkConfig{Password: "pw"}, newRecorder())
	waitState(t, l, StateBound)
	menu := "CON Payswitch\n1. Send money\n2. Pay merchant\n3. Buy airtime\n4. My account" + strings.Repeat(" ", 120)
	_, err := l.Submit(context.Background(), MT{To: "254700000001", From: "*384#", Text: menu,
		USSD: &USSDInfo{ServiceOp: USSDUSSRRequest, SessionInfo: []byte{0, 7}}})
	if err != nil {
		t.Fatal(err)
	}
	subs := srv.submitted()
	if len(subs) != 1 {
		t.Fatalf("%d submit_sm for a USSD screen, want 1 (never split)", len(subs))
	}
	s := subs[0]
	if string(s.tlvs[pdutlv.TagUssdServiceOp]) != string([]byte{USSDUSSRRequest}) ||
		string(s.tlvs[pdutlv.TagItsSessionInfo]) != string([]byte{0, 7}) {
		t.Fatalf("TLVs %v", s.tlvs)
	}
	if s.esmClass != 0 || string(s.sm) != menu {
		t.Fatalf("esm 0x%x text %q", s.esmClass, s.sm)
	}
}

func TestLinkSubmitStatuses(t *testing.T) {
	tests := []struct {
		name      string
		status    uint32
		temporary bool
		submits   int // a throttling answer is tried again within Submit
	}{
		{"throttled", StatusThrottled, true, throttleRetries + 1},
		{"queue full", StatusMsgQFul, true, throttleRetries + 1},
		{"invalid destination", StatusInvDstAdr, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestSMSC(t, "pw")
			srv.submitStatus = func(int) uint32 { return tc.status }
			reg := prometheus.NewRegistry()
			l := NewLink(LinkConfig{Name: "a", Address: srv.addr(), Password: "pw", RespTimeout: 5 * time.Second}, newRecorder(), zerolog.Nop(), reg)
			l.throttlePause = time.Millisecond
			l.Start(context.Background())
			t.Cleanup(func() { l.Close() })
			waitState(t, l, StateBound)
			ids, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "hi"})
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tc.status || len(ids) != 0 {
				t.Fatalf("Submit: %v %v", ids, err)
			}
			if IsTemporary(err) != tc.temporary {
				t.Fatalf("IsTemporary(%v) = %v", err, !tc.temporary)
			}
			if n := len(srv.submitted()); n != tc.submits {
				t.Fatalf("%d submit_sm, want %d", n, tc.submits)
			}
			if v := gauge(t, reg, "payswitch_smpp_submit_errors_total", "a", "status", errorLabel(err)); v != float64(tc.submits) {
				t.Fatalf("submit_errors_total %v, want %d", v, tc.submits)
			}
			st := l.Stats()
			if st.Failed != 1 || st.Submitted != 0 || (tc.temporary && st.Throttled != uint64(tc.submits)) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestIsTemporary(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not bound", ErrNotBound, true},
		{"timeout", ErrTimeout, true},
		{"connection lost", ErrConnLost, true},
		{"deadline", context.DeadlineExceeded, true},
		{"throttled", &StatusError{Command: "submit_sm", Status: 0x58}, true},
		{"system error", &StatusError{Command: "submit_sm", Status: 0x08}, true},
		{"invalid destination", &StatusError{Command: "submit_sm", Status: 0x0B}, false},
		{"invalid source", &StatusError{Command: "submit_sm", Status: 0x0A}, false},
		{"bad address", ErrBadAddress, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsTemporary(tc.err); got != tc.want {
				t.Fatalf("IsTemporary(%v) = %v", tc.err, got)
			}
		})
	}
}

func TestLinkTPSLimit(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	l := startLink(t, srv, LinkConfig{Password: "pw", TPS: 1}, newRecorder())
	waitState(t, l, StateBound)
	if _, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "one"}); err != nil {
		t.Fatal(err)
	}
	// At 1 TPS the next token is about a second away: a caller that cannot wait that
	// long is turned away by the limiter before anything reaches the SMSC.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := l.Submit(ctx, MT{To: "254700000001", From: "22333", Text: "two"}); err == nil || !IsTemporary(err) {
		t.Fatalf("second Submit within the same second: %v", err)
	}
	if n := len(srv.submitted()); n != 1 {
		t.Fatalf("SMSC got %d submit_sm, want 1", n)
	}
}

func TestLinkWindow(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	srv.hold = make(chan struct{})
	l := startLink(t, srv, LinkConfig{Password: "pw", Window: 2}, newRecorder())
	waitState(t, l, StateBound)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "hi"})
			errs <- err
		})
	}
	srv.waitFor("two outstanding", func() bool { return srv.outstanding == 2 })
	if st := l.Stats(); st.InFlight != 2 || st.Window != 2 || st.State != StateBound || st.Sessions != 1 {
		t.Fatalf("stats with a full window: %+v", st)
	}
	srv.mu.Lock()
	close(srv.hold)
	srv.hold = nil
	srv.mu.Unlock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.submits) != 5 || srv.maxOut != 2 {
		t.Fatalf("%d submits, at most %d outstanding; want 5 and 2", len(srv.submits), srv.maxOut)
	}
}

// A deliver_sm whose sequence number equals that of an outstanding submit_sm must reach
// the handler, and the submit_sm must still get its own response. go-smpp's Transceiver
// mistakes the deliver_sm for the submit_sm_resp and loses the MO.
func TestLinkSequenceNumberCollision(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	rec := newRecorder()
	l := startLink(t, srv, LinkConfig{Password: "pw"}, rec)
	waitState(t, l, StateBound)
	statuses := make(chan uint32, 1)
	srv.onSubmit = func(c *smscConn, seq uint32) {
		st, err := c.deliver(deliverSM("254700000001", "22333", 0, 0, []byte("CANCEL"), nil), seq)
		if err != nil {
			st = 0xFFFFFFFF
		}
		statuses <- st
	}
	ids, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "hi"})
	if err != nil || len(ids) != 1 {
		t.Fatalf("Submit: %v %v", ids, err)
	}
	if st := <-statuses; st != StatusOK {
		t.Fatalf("deliver_sm answered 0x%x", st)
	}
	if m := rec.takeMO(t); m.Text != "CANCEL" {
		t.Fatalf("MO %+v", m)
	}
}

func TestLinkDropAndRebind(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	rec := newRecorder()
	l := startLink(t, srv, LinkConfig{Password: "pw"}, rec)
	waitState(t, l, StateBound)
	srv.dropAll()
	waitState(t, l, StateDown)
	waitState(t, l, StateBound)
	if _, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "after"}); err != nil {
		t.Fatal(err)
	}
	if st := srv.mustDeliver(t, deliverSM("254700000001", "22333", 0, 0, []byte("BAL"), nil)); st != StatusOK {
		t.Fatalf("deliver after rebind answered 0x%x", st)
	}
	rec.takeMO(t)
}

func TestLinkDeclaredDownWhenSMSCStopsAnswering(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	l := startLink(t, srv, LinkConfig{Password: "pw", EnquireLink: 20 * time.Millisecond, RespTimeout: 100 * time.Millisecond}, newRecorder())
	waitState(t, l, StateBound)
	srv.setMute(true)
	waitState(t, l, StateDown) // enquire_link went unanswered
	srv.setMute(false)
	waitState(t, l, StateBound)
	if _, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "back"}); err != nil {
		t.Fatal(err)
	}
}

func TestLinkCloseRefusesNewMO(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	release := make(chan struct{})
	entered := make(chan struct{})
	h := HandlerFuncs{MO: func(ctx context.Context, m MO) error {
		close(entered)
		<-release
		return nil
	}}
	l := startLink(t, srv, LinkConfig{Password: "pw"}, h)
	waitState(t, l, StateBound)
	statuses := make(chan uint32, 1)
	go func() {
		st, _ := srv.deliver(deliverSM("254700000001", "22333", 0, 0, []byte("BAL"), nil), 0)
		statuses <- st
	}()
	<-entered
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	// Close waits for the handler in flight; meanwhile a new MO is refused for now.
	waitClosing(t, l)
	if st := srv.mustDeliver(t, deliverSM("254700000001", "22333", 0, 0, []byte("MINI"), nil)); st != StatusRxTempAppn {
		t.Fatalf("MO during Close answered 0x%x", st)
	}
	close(release)
	if st := <-statuses; st != StatusOK {
		t.Fatalf("MO in flight at Close answered 0x%x", st)
	}
	<-closed
	if l.State() != StateClosed {
		t.Fatalf("state %q", l.State())
	}
}

func waitClosing(t *testing.T, l *Link) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		c := l.closing
		l.mu.Unlock()
		if c {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("link never started closing")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	l := NewLink(LinkConfig{Name: "x"}, HandlerFuncs{}, zerolog.Nop(), nil)
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{4, 4 * time.Second, 8 * time.Second},
		{30, 30 * time.Second, time.Minute},
	}
	for _, tc := range tests {
		for range 20 {
			if d := l.backoff(tc.attempt); d < tc.min || d > tc.max {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}

func BenchmarkLinkSubmit(b *testing.B) {
	srv := newTestSMSC(b, "pw")
	l := NewLink(LinkConfig{Name: "bench", Address: srv.addr(), Password: "pw", Window: 50}, HandlerFuncs{}, zerolog.Nop(), nil)
	l.minBackoff = time.Millisecond
	l.Start(context.Background())
	defer l.Close()
	for l.State() != StateBound {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "Your balance is KES 1,500.00"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestLinkCloseWhileBindHangs(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	srv.setMute(true) // accepts the connection, never answers the bind
	l := startLink(t, srv, LinkConfig{Password: "pw", RespTimeout: time.Hour}, newRecorder())
	srv.waitFor("an unanswered bind", func() bool { return srv.ignored > 0 })
	waitState(t, l, StateBinding)
	l.Close() // must not wait an hour for the bind response
	if l.State() != StateClosed {
		t.Fatalf("state %q", l.State())
	}
}

func TestLinksShareMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srvA, srvB := newTestSMSC(t, "pw"), newTestSMSC(t, "pw")
	var links []*Link
	for i, srv := range []*testSMSC{srvA, srvB} {
		l := NewLink(LinkConfig{Name: []string{"a", "b"}[i], Address: srv.addr(), Password: "pw"}, HandlerFuncs{}, zerolog.Nop(), reg)
		l.Start(context.Background())
		t.Cleanup(func() { l.Close() })
		waitState(t, l, StateBound)
		links = append(links, l)
	}
	if _, err := links[1].Submit(context.Background(), MT{To: "254700000001", From: "22333", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if a, b := gauge(t, reg, "payswitch_smpp_link_up", "a"), gauge(t, reg, "payswitch_smpp_link_up", "b"); a != 1 || b != 1 {
		t.Fatalf("link_up a=%v b=%v", a, b)
	}
	if v := gauge(t, reg, "payswitch_smpp_messages_total", "b", "direction", "out"); v != 1 {
		t.Fatalf("messages_total{b,out} = %v", v)
	}
	if v := gauge(t, reg, "payswitch_smpp_messages_total", "a", "direction", "out"); v != 0 {
		t.Fatalf("messages_total{a,out} = %v", v)
	}
}

// A handler that panics costs one temporary refusal, not the process or the link.
func TestLinkSurvivesHandlerPanic(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	calls := 0
	l := startLink(t, srv, LinkConfig{Password: "pw"}, HandlerFuncs{MO: func(context.Context, MO) error {
		calls++
		if calls == 1 {
			panic("engine bug")
		}
		return nil
	}})
	waitState(t, l, StateBound)
	if st := srv.mustDeliver(t, deliverSM("254700000001", "22333", 0, 0, []byte("BAL"), nil)); st != StatusRxTempAppn {
		t.Fatalf("deliver_sm to a panicking handler answered 0x%x", st)
	}
	if st := srv.mustDeliver(t, deliverSM("254700000001", "22333", 0, 0, []byte("BAL"), nil)); st != StatusOK || l.State() != StateBound {
		t.Fatalf("redelivery answered 0x%x, link %s", st, l.State())
	}
}

// Concurrent writes share flushes (the last of a burst flushes for all), and every PDU
// still reaches the peer whole.
func TestSessionConcurrentWritesAllArrive(t *testing.T) {
	for _, n := range []int{1, 7, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			local, peer := net.Pipe()
			defer local.Close()
			defer peer.Close()
			s := &session{conn: local, bw: bufio.NewWriter(local), respTimeout: 10 * time.Second}
			peer.SetReadDeadline(time.Now().Add(10 * time.Second)) // a PDU left unflushed fails, not hangs
			got := make(chan []uint32, 1)
			go func() {
				var seqs []uint32
				br := bufio.NewReader(peer)
				for len(seqs) < n {
					p, err := pdu.Decode(br)
					if err != nil {
						t.Error(err)
						break
					}
					seqs = append(seqs, p.Header().Seq)
				}
				got <- seqs
			}()
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					p := pdu.NewEnquireLink()
					p.Header().Seq = uint32(i + 1)
					if err := s.write(p); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			seqs := <-got
			slices.Sort(seqs)
			for i, seq := range seqs {
				if seq != uint32(i+1) {
					t.Fatalf("peer got sequence numbers %v, want 1..%d", seqs, n)
				}
			}
			if len(seqs) != n {
				t.Fatalf("peer got %d PDUs, want %d", len(seqs), n)
			}
		})
	}
}

// A carrier's MO beyond the reassembler's caps is refused as any MO the link cannot
// take: permanently for a message of too many parts, for now while full.
func TestLinkRefusesMOBeyondReassemblyCaps(t *testing.T) {
	srv := newTestSMSC(t, "pw")
	rec := newRecorder()
	l := startLink(t, srv, LinkConfig{Password: "pw"}, rec)
	waitState(t, l, StateBound)
	part := func(ref, total byte) pdu.Body {
		return deliverSM("254700000001", "22333", 0x00, 0x40, append([]byte{5, 0, 3, ref, total, 1}, "part"...), nil)
	}
	if st := srv.mustDeliver(t, part(1, 255)); st != StatusRxPermAppn {
		t.Fatalf("part 1 of 255: 0x%x, want ESME_RX_P_APPN", st)
	}
	for ref := range byte(maxSetsPerSender) {
		if st := srv.mustDeliver(t, part(ref, 2)); st != StatusOK {
			t.Fatalf("set %d: 0x%x", ref, st)
		}
	}
	if st := srv.mustDeliver(t, part(200, 2)); st != StatusRxTempAppn {
		t.Fatalf("one set too many from one number: 0x%x, want ESME_RX_T_APPN", st)
	}
	if sets, _ := l.reasm.Held(); sets != maxSetsPerSender || len(rec.mos) != 0 {
		t.Fatalf("holding %d sets, %d MO handled", sets, len(rec.mos))
	}
}
