package ussd

import (
	"context"
	"strconv"
	"strings"
)

// USSD service operations of SMPP 3.4's ussd_service_op (section 5.3.2.44) that
// HandleSMPP reads and that its caller writes in the answer.
const (
	OpPSSDIndication uint8 = 0x00 // MO: the user dialled (PSSD); treated as a dial
	OpPSSRIndication uint8 = 0x01 // MO: the user dialled the service code: a new session
	OpUSSRRequest    uint8 = 0x02 // MT answer that shows a screen and waits: continue
	OpPSSRResponse   uint8 = 0x11 // MT answer that ends the session
	OpUSSRConfirm    uint8 = 0x12 // MO: the user's answer to the last screen
)

// ReplyOp is the ussd_service_op of the submit_sm that carries an answer of HandleSMPP.
func ReplyOp(end bool) uint8 {
	if end {
		return OpPSSRResponse
	}
	return OpUSSRRequest
}

// HandleSMPP answers a deliver_sm that carried ussd_service_op: link names the link
// (or the account of the switch's SMPP server) it came over, from is its source_addr,
// sessionInfo its its_session_info (nil when absent) and text the user's input (for a
// dial, the dialled string such as "*384#" or "*384*2*55501#"). The caller submits reply
// to from, over link, with ussd_service_op ReplyOp(end) and the same its_session_info.
//
// The session is keyed by from and the session number (the first octet of
// its_session_info), not by the sequence number that follows it. An answer (USSR
// confirm) goes to the push session of that number and session number when one was
// pushed over link (OpenPush), and to the phone's own dialogue otherwise. An empty
// reply means there is nothing to answer (an operation other than a dial or an answer,
// or a malformed request). A non-nil err with a reply means the engine failed: the
// reply says sorry and ends the session, and should be sent all the same.
func (m *Menu) HandleSMPP(ctx context.Context, link, from string, serviceOp uint8, sessionInfo []byte, text string) (reply string, end bool, err error) {
	in := Input{SessionID: smppKey(from, sessionInfo), Phone: from, Incremental: true}
	switch serviceOp {
	case OpPSSRIndication, OpPSSDIndication:
		m.endPush(from, sessionInfo)
		in.Begin, in.NewInput = true, m.dialled(text)
	case OpUSSRConfirm:
		if scr, ok, err := m.answerPush(ctx, link, from, sessionInfo, text); ok {
			return scr.Text, scr.End, err
		}
		in.NewInput = text
	default:
		return "", false, nil
	}
	scr, err := m.Step(ctx, in)
	if scr.Text == "" {
		return "", false, err
	}
	return scr.Text, scr.End, err
}

func smppKey(from string, sessionInfo []byte) string {
	key := "smpp:" + from
	if len(sessionInfo) > 0 {
		key += "/" + strconv.Itoa(int(sessionInfo[0]))
	}
	return key
}

// dialled returns the inputs a dialled string carries after the service code:
// "*384*2*55501#" gives "2*55501" when the service code is *384#. Anything else gives "".
func (m *Menu) dialled(text string) string {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "*") || !strings.HasSuffix(text, "#") || len(text) < 2 {
		return ""
	}
	rest, ok := strings.CutPrefix(text[1:len(text)-1], m.serviceBase+"*")
	if !ok {
		return ""
	}
	return rest
}
