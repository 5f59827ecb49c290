package smscsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/smpp/server"
)

// waitLimit only guards against a hung test; no assertion depends on it.
const waitLimit = 10 * time.Second

const (
	phone     = "254700000001"
	shortcode = "22333"
)

// mustStart starts a sim on loopback ports and closes it when the test ends.
func mustStart(t *testing.T, cfg Config) *Sim {
	t.Helper()
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 5 * time.Millisecond
	}
	if cfg.ReceiptDelay == 0 {
		cfg.ReceiptDelay = time.Millisecond
	}
	if cfg.RespTimeout == 0 {
		cfg.RespTimeout = time.Second // go-smpp clients never answer unbind
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// esme is a go-smpp transceiver bound to the sim that collects deliver_sm.
type esme struct {
	*smppcli.Transceiver
	got chan pdu.Body
}

func bindESME(t *testing.T, s *Sim, user, passwd string) (*esme, smppcli.ConnStatus) {
	t.Helper()
	e := &esme{got: make(chan pdu.Body, 64)}
	e.Transceiver = &smppcli.Transceiver{Addr: s.Addr(), User: user, Passwd: passwd,
		Handler: func(p pdu.Body) { e.got <- p }}
	t.Cleanup(func() { e.Close() })
	select {
	case st := <-e.Bind():
		return e, st
	case <-time.After(waitLimit):
		t.Fatal("no bind status")
		return nil, nil
	}
}

func mustBindESME(t *testing.T, s *Sim) *esme {
	t.Helper()
	e, st := bindESME(t, s, "payswitch", "secret")
	if st.Status() != smppcli.Connected {
		t.Fatalf("bind: %v %v", st.Status(), st.Error())
	}
	if err := s.WaitBound(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *esme) next(t *testing.T) pdu.Body {
	t.Helper()
	select {
	case p := <-e.got:
		return p
	case <-time.After(waitLimit):
		t.Fatal("no deliver_sm")
		return nil
	}
}

// rawShortMessage rebuilds short_message as sent, UDH included, from what
// go-smpp's decoder split apart (without UDHList.Bytes, which corrupts the
// text it shares a buffer with).
func rawShortMessage(p pdu.Body) []byte {
	f := p.Fields()
	sm := f[pdufield.ShortMessage].(*pdufield.SM).Data
	l, ok := f[pdufield.GSMUserData].(*pdufield.UDHList)
	if !ok {
		return sm
	}
	var udh []byte
	for _, e := range l.Data {
		udh = append(udh, e.IEI.Data, e.IELength.Data)
		udh = append(udh, e.IEData.Data...)
	}
	return append(append([]byte{byte(len(udh))}, udh...), sm...)
}

// readMO decodes deliver_sm until one whole message is reassembled.
func readMO(t *testing.T, next func() pdu.Body) (from, to, text string, parts int) {
	t.Helper()
	r := smpp.NewReassembler(time.Minute)
	for {
		p := next()
		f := p.Fields()
		part, err := smpp.Decode(fieldByte(f, pdufield.DataCoding), fieldByte(f, pdufield.ESMClass), rawShortMessage(p), nil)
		if err != nil {
			t.Fatal(err)
		}
		parts++
		from, to = fieldString(f, pdufield.SourceAddr), fieldString(f, pdufield.DestinationAddr)
		if text, ok := r.Add(from, part, time.Now()); ok {
			return from, to, text, parts
		}
	}
}

func nextMT(t *testing.T, ch <-chan MT) MT {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitLimit):
		t.Fatal("no MT")
		return MT{}
	}
}

var longGSM = strings.Repeat("PAY 4411 1,500.00 ref-", 20) // 440 septets, 3 parts

const longUCS2 = "Malipo yamekamilika ✓ Asante sana kwa kutumia huduma yetu — salio lako jipya ni KES 1,250.00 😀"

func TestMOReachesESME(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		wantParts int
	}{
		{"plain GSM", "PAY 4411 150 inv-7", 1},
		{"GSM extension characters", "BAL {€}", 1},
		{"UCS-2", "Habari 😀", 1},
		{"long GSM", longGSM, 3},
		{"long UCS-2", longUCS2, 2},
	}
	s := mustStart(t, Config{})
	e := mustBindESME(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SendMO(ctxT(t), phone, shortcode, tt.text); err != nil {
				t.Fatal(err)
			}
			from, to, text, parts := readMO(t, func() pdu.Body { return e.next(t) })
			if from != phone || to != shortcode || text != tt.text || parts != tt.wantParts {
				t.Fatalf("got %s -> %s %q in %d parts, want %s -> %s %q in %d", from, to, text, parts, phone, shortcode, tt.text, tt.wantParts)
			}
		})
	}
}

func TestMOQueuedWhileUnboundFlushesOnBind(t *testing.T) {
	s := mustStart(t, Config{})
	texts := []string{"BAL", "MINI", longGSM}
	for _, text := range texts {
		if err := s.SendMO(ctxT(t), phone, shortcode, text); err != nil {
			t.Fatal(err)
		}
	}
	e := mustBindESME(t, s)
	for _, want := range texts {
		if _, _, got, _ := readMO(t, func() pdu.Body { return e.next(t) }); got != want {
			t.Fatalf("got %q, want %q (in order)", got, want)
		}
	}
}

func TestSendMORefusals(t *testing.T) {
	s := mustStart(t, Config{QueueSize: 1})
	if err := s.SendMO(ctxT(t), "", shortcode, "x"); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("no sender: %v", err)
	}
	if err := s.SendMO(ctxT(t), phone, shortcode, "one"); err != nil {
		t.Fatal(err)
	}
	if err := s.SendMO(ctxT(t), phone, shortcode, "two"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("over the queue: %v, want ErrQueueFull", err)
	}
	s.Close()
	if err := s.SendMO(context.Background(), phone, shortcode, "three"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

// rawESME is a hand-driven ESME that chooses its deliver_sm_resp status,
// which go-smpp's client cannot (it always acknowledges).
type rawESME struct {
	c net.Conn
	r *bufio.Reader
}

func dialRawESME(t *testing.T, s *Sim) *rawESME {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	e := &rawESME{c: c, r: bufio.NewReader(c)}
	b := pdu.NewBindTransceiver()
	b.Fields().Set(pdufield.SystemID, "payswitch")
	b.Fields().Set(pdufield.Password, "secret")
	e.write(t, b)
	if p := e.read(t); p.Header().ID != pdu.BindTransceiverRespID || p.Header().Status != 0 {
		t.Fatalf("bind: %s %v", p.Header().ID, p.Header().Status)
	}
	return e
}

func (e *rawESME) write(t *testing.T, p pdu.Body) {
	t.Helper()
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func (e *rawESME) read(t *testing.T) pdu.Body {
	t.Helper()
	p, err := pdu.Decode(e.r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return p
}

func (e *rawESME) ack(t *testing.T, p pdu.Body, status uint32) {
	t.Helper()
	r := pdu.NewDeliverSMRespSeq(p.Header().Seq)
	r.Header().Status = pdu.Status(status)
	e.write(t, r)
}

func TestMORetriedUntilESMEPersists(t *testing.T) {
	tests := []struct {
		name     string
		status   uint32
		retried  bool
		nextText string
	}{
		{"temporary app error", server.StatusXTAppn, true, "after temp"},
		{"throttled", server.StatusThrottled, true, "after throttle"},
		{"permanent app error drops", server.StatusXPAppn, false, "after perm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustStart(t, Config{})
			e := dialRawESME(t, s)
			if err := s.SendMO(ctxT(t), phone, shortcode, "PAY 1 2"); err != nil {
				t.Fatal(err)
			}
			if err := s.SendMO(ctxT(t), phone, shortcode, tt.nextText); err != nil {
				t.Fatal(err)
			}
			first := e.read(t)
			e.ack(t, first, tt.status)
			want := []string{"PAY 1 2", tt.nextText}
			if !tt.retried {
				want = want[1:]
			}
			for _, w := range want {
				p := e.read(t)
				if p.Header().ID != pdu.DeliverSMID {
					t.Fatalf("got %s", p.Header().ID)
				}
				if got := string(rawShortMessage(p)); got != w {
					t.Fatalf("delivered %q, want %q", got, w)
				}
				if p.Header().Seq == first.Header().Seq {
					t.Fatal("retry reused the sequence number")
				}
				e.ack(t, p, 0)
			}
		})
	}
}

func TestMTReassembledForSubscribers(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		long      bool
		codec     pdutext.Codec
		wantParts int
	}{
		{"short GSM", "Your code is 482913", false, pdutext.Raw("Your code is 482913"), 1},
		{"short UCS-2", "Asante 😀", false, pdutext.UCS2("Asante 😀"), 1},
		{"long UCS-2", longUCS2, true, pdutext.UCS2(longUCS2), 2},
		{"long GSM", longGSM, true, pdutext.GSM7(longGSM), 3},
	}
	s := mustStart(t, Config{})
	e := mustBindESME(t, s)
	mine, stopMine := s.Subscribe(phone)
	defer stopMine()
	all, stopAll := s.Subscribe("")
	defer stopAll()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := &smppcli.ShortMessage{Src: shortcode, Dst: phone, Text: tt.codec}
			ids := submitMT(t, e, sm, tt.long)
			m := nextMT(t, mine)
			if m.Text != tt.text || m.From != shortcode || m.To != phone || m.Parts != tt.wantParts || m.Status != "DELIVRD" || m.SystemID != "payswitch" {
				t.Fatalf("MT %+v, want %q in %d parts", m, tt.text, tt.wantParts)
			}
			if len(m.IDs) != tt.wantParts || m.ID != m.IDs[0] || m.IDs[len(m.IDs)-1] != ids[len(ids)-1] {
				t.Fatalf("MT ids %v (id %s), submit_sm_resp ids %v", m.IDs, m.ID, ids)
			}
			if m2 := nextMT(t, all); m2.Text != tt.text {
				t.Fatalf("catch-all subscriber got %q", m2.Text)
			}
			h := s.MTs(phone)
			if last := h[len(h)-1]; last.ID != m.ID || last.Text != tt.text {
				t.Fatalf("history ends with %+v", last)
			}
		})
	}
	if n := len(s.MTs("254799999999")); n != 0 {
		t.Fatalf("history of another number has %d MTs", n)
	}
}

func TestReceipts(t *testing.T) {
	s := mustStart(t, Config{Unreachable: []string{"254700000404", "254700000405"}})
	e := mustBindESME(t, s)
	s.SetUnreachable("254700000405", false)

	submit := func(dst string, reg pdufield.DeliverySetting) string {
		t.Helper()
		sm := &smppcli.ShortMessage{Src: shortcode, Dst: dst, Text: pdutext.Raw("hello"), Register: reg}
		if _, err := e.Submit(sm); err != nil {
			t.Fatal(err)
		}
		return sm.RespID()
	}
	tests := []struct {
		name     string
		dst      string
		reg      pdufield.DeliverySetting
		wantStat string
		state    byte
	}{
		{"delivered", phone, pdufield.FinalDeliveryReceipt, "DELIVRD", 2},
		{"unreachable", "254700000404", pdufield.FinalDeliveryReceipt, "UNDELIV", 5},
		{"failure-only receipt of a failure", "254700000404", pdufield.FailureDeliveryReceipt, "UNDELIV", 5},
		{"reachable again", "254700000405", pdufield.FinalDeliveryReceipt, "DELIVRD", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A message without a receipt request, and a success with a
			// failures-only request, come first: if they produced receipts,
			// those would arrive before the one awaited here.
			submit(phone, pdufield.NoDeliveryReceipt)
			submit(phone, pdufield.FailureDeliveryReceipt)
			id := submit(tt.dst, tt.reg)
			p := e.next(t)
			f := p.Fields()
			text := string(f[pdufield.ShortMessage].Bytes())
			if fieldByte(f, pdufield.ESMClass) != 0x04 || fieldString(f, pdufield.SourceAddr) != tt.dst || fieldString(f, pdufield.DestinationAddr) != shortcode {
				t.Fatalf("receipt esm_class %#x %s -> %s", fieldByte(f, pdufield.ESMClass), fieldString(f, pdufield.SourceAddr), fieldString(f, pdufield.DestinationAddr))
			}
			if !strings.HasPrefix(text, "id:"+id+" sub:001 ") || !strings.Contains(text, " stat:"+tt.wantStat+" ") || !strings.HasSuffix(text, " text:") {
				t.Fatalf("receipt text %q for id %s", text, id)
			}
			tlv := p.TLVFields()
			if got := tlv[pdutlv.TagReceiptedMessageID].String(); got != id {
				t.Fatalf("receipted_message_id %q, want %q", got, id)
			}
			if got := tlv[pdutlv.TagMessageStateOption].Bytes(); len(got) != 1 || got[0] != tt.state {
				t.Fatalf("message_state % x, want %d", got, tt.state)
			}
		})
	}
	m := s.MTs("254700000404")
	if len(m) == 0 || m[0].Status != "UNDELIV" {
		t.Fatalf("unreachable MT history %+v", m)
	}
}

func TestFaultInjection(t *testing.T) {
	t.Run("throttle", func(t *testing.T) {
		s := mustStart(t, Config{})
		e := mustBindESME(t, s)
		s.SetThrottle(2)
		for i, want := range []pdu.Status{pdu.Status(server.StatusThrottled), pdu.Status(server.StatusThrottled), 0} {
			_, err := e.Submit(&smppcli.ShortMessage{Src: shortcode, Dst: phone, Text: pdutext.Raw("x")})
			var got pdu.Status
			errors.As(err, &got)
			if got != want || (want == 0 && err != nil) {
				t.Fatalf("submit %d: %v, want status %#x", i, err, uint32(want))
			}
		}
		if n := len(s.MTs(phone)); n != 1 {
			t.Fatalf("%d MTs recorded, want only the accepted one", n)
		}
	})
	t.Run("refuse binds", func(t *testing.T) {
		s := mustStart(t, Config{})
		s.SetRefuseBinds(true)
		_, st := bindESME(t, s, "payswitch", "secret")
		var got pdu.Status
		if st.Status() != smppcli.BindFailed || !errors.As(st.Error(), &got) || uint32(got) != server.StatusBindFail {
			t.Fatalf("bind: %v %v, want ESME_RBINDFAIL", st.Status(), st.Error())
		}
	})
	t.Run("drop connections", func(t *testing.T) {
		s := mustStart(t, Config{})
		e := dialRawESME(t, s)
		if err := s.WaitBound(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		s.DropConnections()
		if _, err := io.Copy(io.Discard, e.r); err != nil {
			t.Fatalf("want EOF after drop, got %v", err)
		}
		if err := s.SendMO(ctxT(t), phone, shortcode, "after the drop"); err != nil {
			t.Fatal(err)
		}
		e2 := dialRawESME(t, s)
		p := e2.read(t)
		if got := string(rawShortMessage(p)); got != "after the drop" {
			t.Fatalf("got %q", got)
		}
		e2.ack(t, p, 0)
	})
}

// SetResponseDelay holds submit_sm_resp while the MT already reached the phone; the
// MT carries the submit_sm's user_message_reference.
func TestResponseDelayAndUserRef(t *testing.T) {
	s := mustStart(t, Config{})
	mts, stop := s.Subscribe(phone)
	defer stop()
	e := dialRawESME(t, s)
	s.SetResponseDelay(1, time.Hour)
	// Handlers run concurrently: the second goes out once the first was taken (its MT
	// is published after it took the delay), so that the delay is the first's.
	got := map[string]int{}
	for i, ref := range [][]byte{{0x12, 0x34}, nil} {
		seq := uint32(i + 1)
		var tlvs pdutlv.Fields
		if ref != nil {
			tlvs = pdutlv.Fields{pdutlv.TagUserMessageReference: ref}
		}
		p := pdu.NewSubmitSM(tlvs)
		p.Header().Seq = seq
		p.Fields().Set(pdufield.SourceAddr, shortcode)
		p.Fields().Set(pdufield.DestinationAddr, phone)
		p.Fields().Set(pdufield.ShortMessage, fmt.Sprintf("message %d", seq))
		e.write(t, p)
		mt := nextMT(t, mts)
		got[mt.Text] = mt.UserRef
	}
	if got["message 1"] != 0x1234 || got["message 2"] != 0 {
		t.Fatalf("user refs %v", got)
	}
	// Only the second is answered; the first answer is held back.
	if r := e.read(t); r.Header().ID != pdu.SubmitSMRespID || r.Header().Seq != 2 {
		t.Fatalf("first answer: %s seq %d, want submit_sm_resp seq 2", r.Header().ID, r.Header().Seq)
	}
}

func TestAccounts(t *testing.T) {
	tests := []struct {
		name, user, pass string
		want             uint32
	}{
		{"good", "payswitch", "secret", 0},
		{"wrong password", "payswitch", "guess", server.StatusInvPaswd},
		{"unknown system_id", "other", "secret", server.StatusInvSysID},
	}
	s := mustStart(t, Config{Accounts: map[string]string{"payswitch": "secret"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, st := bindESME(t, s, tt.user, tt.pass)
			var got pdu.Status
			errors.As(st.Error(), &got)
			if uint32(got) != tt.want || (tt.want == 0) != (st.Status() == smppcli.Connected) {
				t.Fatalf("bind: %v %v, want status %#x", st.Status(), st.Error(), tt.want)
			}
		})
	}
}

func TestUSSD(t *testing.T) {
	s := mustStart(t, Config{})
	e := dialRawESME(t, s)
	if err := s.SendUSSD(ctxT(t), phone, "*384#", "*384#", 0x01, []byte{0x00, 0x07}); err != nil {
		t.Fatal(err)
	}
	p := e.read(t)
	e.ack(t, p, 0)
	tlv := p.TLVFields()
	if op := tlv[pdutlv.TagUssdServiceOp]; op == nil || !bytes.Equal(op.Bytes(), []byte{0x01}) {
		t.Fatalf("ussd_service_op %v", op)
	}
	if si := tlv[pdutlv.TagItsSessionInfo]; si == nil || !bytes.Equal(si.Bytes(), []byte{0, 7}) {
		t.Fatalf("its_session_info %v", si)
	}
	if got := string(rawShortMessage(p)); got != "*384#" {
		t.Fatalf("text %q", got)
	}

	// The ESME's menu comes back as a submit_sm with USSD TLVs.
	mts, stop := s.Subscribe(phone)
	defer stop()
	sub := pdu.NewSubmitSM(pdutlv.Fields{pdutlv.TagUssdServiceOp: uint8(0x02), pdutlv.TagItsSessionInfo: []byte{0, 7}})
	sub.Fields().Set(pdufield.SourceAddr, "*384#")
	sub.Fields().Set(pdufield.DestinationAddr, phone)
	sub.Fields().Set(pdufield.ShortMessage, "1. Pay\n2. Balance")
	e.write(t, sub)
	if r := e.read(t); r.Header().ID != pdu.SubmitSMRespID || r.Header().Status != 0 {
		t.Fatalf("submit_sm_resp %s %v", r.Header().ID, r.Header().Status)
	}
	m := nextMT(t, mts)
	if m.Text != "1. Pay\n2. Balance" || m.USSD["ussd_service_op"] != "02" || m.USSD["its_session_info"] != "0007" {
		t.Fatalf("MT %+v", m)
	}
}

func TestUSSDLongTextInMessagePayload(t *testing.T) {
	s := mustStart(t, Config{})
	e := dialRawESME(t, s)
	text := strings.Repeat("menu ", 40) // 200 septets: too long for short_message
	if err := s.SendUSSD(ctxT(t), phone, "*384#", text, 0x12, nil); err != nil {
		t.Fatal(err)
	}
	p := e.read(t)
	e.ack(t, p, 0)
	pl := p.TLVFields()[pdutlv.TagMessagePayload]
	if pl == nil || len(rawShortMessage(p)) != 0 {
		t.Fatal("want empty short_message and message_payload")
	}
	part, err := smpp.Decode(fieldByte(p.Fields(), pdufield.DataCoding), 0, pl.Bytes(), nil)
	if err != nil || part.Text != text {
		t.Fatalf("payload %q, %v", part.Text, err)
	}
}

func TestPhoneAPI(t *testing.T) {
	s := mustStart(t, Config{PhoneAPI: "127.0.0.1:0"})
	e := mustBindESME(t, s)
	base := "http://" + s.PhoneAddr()

	t.Run("POST /mo", func(t *testing.T) {
		tests := []struct {
			name string
			body string
			want int
		}{
			{"accepted", `{"from":"254700000001","to":"22333","text":"BAL"}`, http.StatusAccepted},
			{"missing text", `{"from":"254700000001","to":"22333"}`, http.StatusBadRequest},
			{"not JSON", `BAL`, http.StatusBadRequest},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, err := http.Post(base+"/mo", "application/json", strings.NewReader(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
				}
			})
		}
		if _, _, text, _ := readMO(t, func() pdu.Body { return e.next(t) }); text != "BAL" {
			t.Fatalf("ESME got %q", text)
		}
	})

	t.Run("GET /mt streams", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxT(t))
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/mt?msisdn="+phone, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// The subscription exists once the headers are in.
		lines := bufio.NewScanner(resp.Body)
		for _, text := range []string{"first", "second"} {
			if _, err := e.Submit(&smppcli.ShortMessage{Src: shortcode, Dst: phone, Text: pdutext.Raw(text)}); err != nil {
				t.Fatal(err)
			}
			if !lines.Scan() {
				t.Fatalf("stream ended: %v", lines.Err())
			}
			var m MT
			if err := json.Unmarshal(lines.Bytes(), &m); err != nil || m.Text != text || m.To != phone {
				t.Fatalf("line %s: %v", lines.Bytes(), err)
			}
		}
	})

	t.Run("GET /mt/history", func(t *testing.T) {
		resp, err := http.Get(base + "/mt/history?msisdn=" + phone)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got []MT
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Text != "first" || got[1].Text != "second" {
			t.Fatalf("history %+v", got)
		}
		resp2, err := http.Get(base + "/mt/history?msisdn=254799999999")
		if err != nil {
			t.Fatal(err)
		}
		defer resp2.Body.Close()
		body, _ := io.ReadAll(resp2.Body)
		if strings.TrimSpace(string(body)) != "[]" {
			t.Fatalf("empty history %q, want []", body)
		}
	})
}

func TestSubmitSMWithSARTLVs(t *testing.T) {
	s := mustStart(t, Config{})
	e := dialRawESME(t, s)
	mts, stop := s.Subscribe(phone)
	defer stop()
	for i, chunk := range []string{"Hello ", "world"} {
		p := pdu.NewSubmitSM(pdutlv.Fields{
			pdutlv.TagSarMsgRefNum:     binary.BigEndian.AppendUint16(nil, 0x1234),
			pdutlv.TagSarTotalSegments: uint8(2),
			pdutlv.TagSarSegmentSeqnum: uint8(i + 1),
		})
		p.Fields().Set(pdufield.SourceAddr, shortcode)
		p.Fields().Set(pdufield.DestinationAddr, phone)
		p.Fields().Set(pdufield.ShortMessage, chunk)
		e.write(t, p)
		if r := e.read(t); r.Header().Status != 0 {
			t.Fatalf("part %d: %v", i+1, r.Header().Status)
		}
	}
	if m := nextMT(t, mts); m.Text != "Hello world" || m.Parts != 2 {
		t.Fatalf("MT %+v", m)
	}
}

// BenchmarkSubmitMT measures one MT submit_sm round trip from a go-smpp
// client through the sim (decode, id, history, publish) over loopback.
func BenchmarkSubmitMT(b *testing.B) {
	s, err := Start(Config{HistorySize: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tx := &smppcli.Transmitter{Addr: s.Addr(), User: "payswitch", Passwd: "x"}
	defer tx.Close()
	if st := <-tx.Bind(); st.Status() != smppcli.Connected {
		b.Fatal(st.Error())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := tx.Submit(&smppcli.ShortMessage{Src: shortcode, Dst: phone, Text: pdutext.Raw("Your code is 482913")}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMODelivery measures SendMO until a go-smpp transceiver has it.
func BenchmarkMODelivery(b *testing.B) {
	s, err := Start(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	got := make(chan struct{}, 1)
	trx := &smppcli.Transceiver{Addr: s.Addr(), User: "payswitch", Passwd: "x", Handler: func(pdu.Body) { got <- struct{}{} }}
	defer trx.Close()
	if st := <-trx.Bind(); st.Status() != smppcli.Connected {
		b.Fatal(st.Error())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.SendMO(context.Background(), phone, shortcode, "PAY 4411 150"); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}

// submitMT submits sm through e, as one submit_sm or (long) split into concatenated
// parts, and returns the message ID of each part.
func submitMT(t *testing.T, e *esme, sm *smppcli.ShortMessage, long bool) []string {
	t.Helper()
	if !long {
		if _, err := e.Submit(sm); err != nil {
			t.Fatal(err)
		}
		return []string{sm.RespID()}
	}
	parts, err := e.SubmitLongMsg(sm)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range parts {
		ids = append(ids, parts[i].RespID())
	}
	return ids
}
