package smscsim

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/smpp"
)

// A phone shows the last USSD message it got as a screen. A USSR request (ussd_service_op
// 2), whether it answers the phone's own dial or the network starts the dialogue (a
// push), waits for the user's answer: AnswerUSSD sends it back as a USSR confirm with the
// screen's its_session_info. Any other operation (a PSSR response ending the dialogue, a
// notification) is shown and waits for nothing. DialUSSD starts a dialogue of the phone's
// own, with a session number the sim picks, as the network does.

// ErrNoUSSDScreen is returned by AnswerUSSD when no USSD screen waits for the phone's
// answer: none came, it was answered or ended, or it timed out (USSDTimeout).
var ErrNoUSSDScreen = errors.New("smscsim: no USSD screen awaits an answer")

// ErrBadDial is returned by DialUSSD for a text that is not a service code such as
// "*384#" or "*384*2*55501#".
var ErrBadDial = errors.New("smscsim: not a USSD service code; dial e.g. *384#")

const (
	// USSDTimeout is how long a USSD screen waits for an answer before the network ends
	// the dialogue.
	USSDTimeout = 3 * time.Minute
	// maxUSSDScreens bounds the phones whose screen the sim keeps; past it the oldest
	// screen is forgotten.
	maxUSSDScreens = 10000
)

// USSDScreen is the USSD screen a phone shows, as GET /ussd returns it.
type USSDScreen struct {
	From string `json:"from"` // the sender of the screen: the service code or short code
	Text string `json:"text"`
	// Open says the screen waits for the phone's answer (AnswerUSSD).
	Open bool `json:"open"`
	// Session is the session number (its_session_info's first octet), -1 without one.
	Session int       `json:"session"`
	Time    time.Time `json:"time"` // when it reached the phone

	info []byte // its_session_info as it came, for the answer
}

// showUSSDLocked puts mt, which carried ussd_service_op op and its_session_info info
// (nil when absent), on the screen of its phone. s.mu must be held.
func (s *Sim) showUSSDLocked(mt MT, op uint8, info []byte) {
	if _, ok := s.screens[mt.To]; !ok && len(s.screens) >= maxUSSDScreens {
		oldest := ""
		for n, sc := range s.screens {
			if oldest == "" || sc.Time.Before(s.screens[oldest].Time) {
				oldest = n
			}
		}
		delete(s.screens, oldest)
	}
	sc := &USSDScreen{From: mt.From, Text: mt.Text, Open: op == smpp.USSDUSSRRequest, Session: -1, Time: mt.Time,
		info: info}
	if len(info) > 0 {
		sc.Session = int(info[0])
	}
	s.screens[mt.To] = sc
}

// USSDScreen returns the USSD screen msisdn shows, if any. A screen that waited longer
// than USSDTimeout is no longer open.
func (s *Sim) USSDScreen(msisdn string) (USSDScreen, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.screens[msisdn]
	if sc == nil {
		return USSDScreen{}, false
	}
	out := *sc
	out.Open = sc.Open && time.Since(sc.Time) < USSDTimeout
	out.info = nil
	return out, true
}

// AnswerUSSD plays the user of msisdn keying text into the USSD screen that waits for an
// answer: a deliver_sm to the screen's sender with ussd_service_op 0x12 (USSR confirm)
// and the screen's session number, the sequence number one on. The screen then waits for
// the network's next one.
func (s *Sim) AnswerUSSD(ctx context.Context, msisdn, text string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.screens[msisdn]
	if sc == nil || !sc.Open || time.Since(sc.Time) >= USSDTimeout {
		return ErrNoUSSDScreen
	}
	var info []byte
	if len(sc.info) > 0 {
		info = []byte{sc.info[0], 0}
		if len(sc.info) > 1 {
			info[1] = sc.info[1] + 2 // the sequence number is in bits 7..1
		}
	}
	if err := s.enqueueLocked(&delivery{pdus: []pdu.Body{ussdPDU(msisdn, sc.From, text, smpp.USSDUSSRConfirm, info)},
		what: "USSD", from: msisdn}); err != nil {
		return err
	}
	sc.Open = false
	return nil
}

// DialUSSD plays the user of msisdn dialling code, such as "*384#" or "*384*2*55501#":
// a deliver_sm to the service code with ussd_service_op 0x01 (PSSR indication) and a new
// session number. It ends whatever dialogue the phone had.
func (s *Sim) DialUSSD(ctx context.Context, msisdn, code string) error {
	code = strings.TrimSpace(code)
	if !IsDial(code) {
		return ErrBadDial
	}
	if msisdn == "" {
		return ErrBadMessage
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	service, _, _ := strings.Cut(code[1:len(code)-1], "*")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextSession++
	info := []byte{s.nextSession, 0}
	if err := s.enqueueLocked(&delivery{pdus: []pdu.Body{ussdPDU(msisdn, "*"+service+"#", code, smpp.USSDPSSRIndication, info)},
		what: "USSD", from: msisdn}); err != nil {
		return err
	}
	delete(s.screens, msisdn)
	return nil
}

// IsDial reports whether text is a USSD service code a phone dials: '*', digits with
// '*' between them, '#'.
func IsDial(text string) bool {
	if len(text) < 3 || text[0] != '*' || text[len(text)-1] != '#' {
		return false
	}
	for _, part := range strings.Split(text[1:len(text)-1], "*") {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return false
		}
	}
	return true
}

// ussdPDU builds the deliver_sm of one USSD message from a phone: the ussd_service_op
// TLV, its_session_info when info is not nil, and text that is too long for one short
// message in message_payload, since USSD is never concatenated.
func ussdPDU(from, to, text string, serviceOp uint8, info []byte) pdu.Body {
	p := newDeliverSM(from, to)
	f := p.Fields()
	segs := smpp.Encode(text, 0)
	f.Set(pdufield.DataCoding, segs[0].DataCoding)
	if len(segs) == 1 {
		f.Set(pdufield.ShortMessage, segs[0].ShortMessage)
	} else {
		var payload []byte
		for _, seg := range segs {
			payload = append(payload, seg.ShortMessage[6:]...) // drop the concatenation UDH
		}
		f.Set(pdufield.ShortMessage, nil)
		p.TLVFields().Set(pdutlv.TagMessagePayload, payload)
	}
	p.TLVFields().Set(pdutlv.TagUssdServiceOp, serviceOp)
	if info != nil {
		p.TLVFields().Set(pdutlv.TagItsSessionInfo, info)
	}
	return p
}
