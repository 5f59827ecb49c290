package smscsim

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/smpp/server"

	"github.com/payswitch/payswitch/internal/mask"
)

// statusSubmitFail is ESME_RSUBMITFAIL, for a submit_sm whose text cannot be
// read.
const statusSubmitFail uint32 = 0x45

// handler is the Sim seen as a server.Handler; a separate type keeps those
// methods out of Sim's API.
type handler Sim

var _ server.Handler = (*handler)(nil)

// Authenticate checks the account; with Config.Accounts nil it accepts any system_id.
// An empty password is refused even then: an ESME that binds without one is
// misconfigured, and on a shared machine anyone could bind as it.
func (h *handler) Authenticate(systemID, password, bindType, remote string) uint32 {
	s := (*Sim)(h)
	s.mu.Lock()
	refuse := s.refuseBinds
	s.mu.Unlock()
	if refuse {
		return server.StatusBindFail
	}
	if password == "" {
		return server.StatusInvPaswd
	}
	if s.cfg.Accounts == nil {
		return server.StatusOK
	}
	want, ok := s.cfg.Accounts[systemID]
	if !ok {
		return server.StatusInvSysID
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		return server.StatusInvPaswd
	}
	return server.StatusOK
}

// Bound adds a session that can receive to the delivery targets.
func (h *handler) Bound(sess *server.Session) {
	s := (*Sim)(h)
	if !sess.CanReceive() {
		return
	}
	s.mu.Lock()
	s.sessions = append(s.sessions, sess)
	s.notifyLocked()
	s.mu.Unlock()
}

// Unbound forgets the session.
func (h *handler) Unbound(sess *server.Session) {
	s := (*Sim)(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.sessions {
		if x == sess {
			s.sessions = append(s.sessions[:i], s.sessions[i+1:]...)
			s.notifyLocked()
			return
		}
	}
}

// HandlePDU accepts submit_sm; anything else is unsupported.
func (h *handler) HandlePDU(ctx context.Context, sess *server.Session, p pdu.Body) pdu.Body {
	if p.Header().ID != pdu.SubmitSMID {
		return nil
	}
	s := (*Sim)(h)
	resp, delay := s.submit(sess, p)
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-s.ctx.Done():
		}
	}
	return resp
}

// partKey identifies a concatenated MT being reassembled: parts are joined
// per submitting ESME, recipient and reference.
type partKey struct {
	systemID, to string
	ref          uint16
	total        uint8
}

// partialMT collects the message ids of a concatenated MT until its last
// part arrives.
type partialMT struct {
	first   time.Time
	ids     []string
	ussd    map[string]string
	userRef int
}

// submit turns one submit_sm into a message id, an MT once the message is
// complete, and a delivery receipt when asked. delay is how long to hold the response
// (SetResponseDelay).
func (s *Sim) submit(sess *server.Session, p pdu.Body) (resp pdu.Body, delay time.Duration) {
	f, tlv := p.Fields(), p.TLVFields()
	from, to := fieldString(f, pdufield.SourceAddr), fieldString(f, pdufield.DestinationAddr)
	resp = pdu.NewSubmitSMResp()

	s.mu.Lock()
	if s.throttle > 0 {
		s.throttle--
		s.mu.Unlock()
		resp.Header().Status = pdu.Status(server.StatusThrottled)
		return resp, 0
	}
	if s.slow > 0 {
		s.slow--
		delay = s.slowBy
	}
	s.mu.Unlock()
	if to == "" {
		resp.Header().Status = pdu.Status(server.StatusInvDstAdr)
		return resp, delay
	}

	sm := fieldBytes(f, pdufield.ShortMessage)
	if len(sm) == 0 {
		if pl := tlv[pdutlv.TagMessagePayload]; pl != nil {
			sm = pl.Bytes()
		}
	}
	part, err := smpp.Decode(fieldByte(f, pdufield.DataCoding), fieldByte(f, pdufield.ESMClass), sm, sarOf(tlv))
	if err != nil {
		s.log.Warn().Err(err).Str("to", mask.MSISDN(to)).Msg("smscsim: submit_sm text unreadable")
		resp.Header().Status = pdu.Status(statusSubmitFail)
		return resp, delay
	}
	ussd := ussdOf(tlv)
	var ussdOp uint8
	var ussdInfo []byte // with ussdOp, what a USSD MT puts on the phone's screen
	isUSSD := false
	if v := tlv[pdutlv.TagUssdServiceOp]; v != nil && len(v.Bytes()) == 1 {
		ussdOp, isUSSD = v.Bytes()[0], true
		if si := tlv[pdutlv.TagItsSessionInfo]; si != nil {
			ussdInfo = append([]byte(nil), si.Bytes()...)
		}
	}
	userRef := 0
	if v := tlv[pdutlv.TagUserMessageReference]; v != nil && len(v.Bytes()) == 2 {
		userRef = int(v.Bytes()[0])<<8 | int(v.Bytes()[1])
	}

	reg := fieldByte(f, pdufield.RegisteredDelivery)
	now := time.Now()
	systemID := sess.SystemID()
	s.mu.Lock()
	s.nextID++
	id := fmt.Sprintf("%s%08x", s.idBase, s.nextID)
	status := "DELIVRD"
	ap := s.away[to]
	if s.unreachable[to] {
		status, ap = "UNDELIV", nil
	}
	var mt *MT
	text, complete := s.reasm.Add(systemID+"\x00"+to, part, now)
	if part.Total <= 1 {
		mt = &MT{ID: id, IDs: []string{id}, Parts: 1, USSD: ussd, UserRef: userRef}
	} else {
		s.sweepPartsLocked(now)
		k := partKey{systemID, to, part.Ref, part.Total}
		pm := s.parts[k]
		if pm == nil {
			pm = &partialMT{first: now, userRef: userRef}
			s.parts[k] = pm
		}
		pm.ids = append(pm.ids, id)
		if pm.ussd == nil {
			pm.ussd = ussd
		}
		if complete {
			delete(s.parts, k)
			mt = &MT{ID: pm.ids[0], IDs: pm.ids, Parts: int(part.Total), USSD: pm.ussd, UserRef: pm.userRef}
		}
	}
	if mt != nil {
		mt.From, mt.To, mt.Text, mt.Time, mt.SystemID, mt.Status = from, to, text, now, systemID, status
	}

	if ap != nil {
		// Out of coverage: the SMSC keeps the message, says it is on its way, and owes
		// the final receipt until the phone is back (SetAway).
		if mt != nil {
			ap.mts = append(ap.mts, *mt)
		}
		if wantIntermediate(reg) {
			s.receiptLaterLocked(receipt(id, from, to, "ENROUTE", now), id, systemID)
		}
		if wantReceipt(reg, status) {
			ap.receipts = append(ap.receipts, owedReceipt{id: id, from: from, to: to, systemID: systemID, submitted: now})
		}
	} else {
		if mt != nil {
			if isUSSD && status == "DELIVRD" {
				s.showUSSDLocked(*mt, ussdOp, ussdInfo)
			}
			s.publishLocked(*mt)
		}
		if wantReceipt(reg, status) {
			s.receiptLaterLocked(receipt(id, from, to, status, now), id, systemID)
		}
	}
	s.mu.Unlock()

	switch {
	case mt != nil && ap != nil:
		s.log.Info().Str("to", mask.MSISDN(to)).Int("parts", mt.Parts).Msg("smscsim: MT kept for a phone out of coverage")
	case mt != nil:
		s.log.Info().Str("to", mask.MSISDN(to)).Int("parts", mt.Parts).Str("status", status).Msg("smscsim: MT delivered to phone")
	}
	resp.Fields().Set(pdufield.MessageID, id)
	s.submitted.Add(1)
	return resp, delay
}

// receiptLaterLocked queues receipt r, for message id and the ESME systemID, after
// Config.ReceiptDelay; Unacknowledged counts it meanwhile. s.mu must be held.
func (s *Sim) receiptLaterLocked(r pdu.Body, id, systemID string) {
	s.scheduled++
	time.AfterFunc(s.cfg.ReceiptDelay, func() {
		s.mu.Lock()
		s.scheduled--
		err := s.enqueueLocked(&delivery{pdus: []pdu.Body{r}, systemID: systemID, what: "receipt"})
		s.mu.Unlock()
		if err != nil {
			s.log.Warn().Err(err).Str("message_id", id).Msg("smscsim: receipt dropped")
		}
	})
}

// sweepPartsLocked drops concatenated MTs whose parts stopped coming, in step
// with the reassembler. s.mu must be held.
func (s *Sim) sweepPartsLocked(now time.Time) {
	s.reasm.Sweep(now)
	for k, pm := range s.parts {
		if now.Sub(pm.first) > ReassemblyTimeout {
			delete(s.parts, k)
		}
	}
}

// publishLocked records mt and hands it to its subscribers. s.mu must be held.
func (s *Sim) publishLocked(mt MT) {
	s.history = append(s.history, mt)
	if over := len(s.history) - s.cfg.HistorySize; over > 0 {
		s.history = append(s.history[:0], s.history[over:]...)
	}
	for sub := range s.subs {
		if sub.msisdn != "" && sub.msisdn != mt.To {
			continue
		}
		select {
		case sub.ch <- mt:
		default:
			s.log.Warn().Str("to", mask.MSISDN(mt.To)).Msg("smscsim: subscriber too slow, MT not streamed")
		}
	}
}

// wantReceipt reads registered_delivery (SMPP 3.4 5.2.17): bits 0-1 are 01
// for a receipt on any final outcome, 10 for failures only.
func wantReceipt(registered uint8, status string) bool {
	switch registered & 0x03 {
	case 0x01:
		return true
	case 0x02:
		return status != "DELIVRD"
	}
	return false
}

// wantIntermediate reads registered_delivery for an intermediate notification
// (ENROUTE): bit 4 asks for them (SMPP 3.4 5.2.17), and like many SMSCs the sim
// also sends them to an ESME that asked for a receipt on any final outcome.
func wantIntermediate(registered uint8) bool {
	return registered&0x10 != 0 || registered&0x03 == 0x01
}

// receipt builds the delivery receipt deliver_sm for message id, sent from
// the phone (to) back to the sender (from): status DELIVRD or UNDELIV gives an
// SMSC delivery receipt (esm_class 0x04), ENROUTE an intermediate delivery
// notification (esm_class 0x20, SMPP 3.4 5.2.12). The text follows SMPP 3.4
// Appendix B; its text: field stays empty so that a receipt never repeats a
// one-time code.
func receipt(id, from, to, status string, submitted time.Time) pdu.Body {
	esm, dlvrd, errCode, state := uint8(0x04), "001", "000", uint8(2) // DELIVERED
	switch status {
	case "DELIVRD":
	case "ENROUTE":
		esm, dlvrd, state = 0x20, "000", 1 // ENROUTE: no error, not delivered yet
	default:
		dlvrd, errCode, state = "000", "001", 5 // UNDELIVERABLE
	}
	const layout = "0601021504"
	text := fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:",
		id, dlvrd, submitted.Format(layout), time.Now().Format(layout), status, errCode)
	d := newDeliverSM(to, from)
	f := d.Fields()
	f.Set(pdufield.ESMClass, esm)
	f.Set(pdufield.DataCoding, smpp.CodingGSM7)
	f.Set(pdufield.ShortMessage, text)
	d.TLVFields().Set(pdutlv.TagReceiptedMessageID, pdutlv.CString(id))
	d.TLVFields().Set(pdutlv.TagMessageStateOption, state)
	return d
}

// newDeliverSM starts a deliver_sm with addresses and their TON/NPI.
func newDeliverSM(from, to string) pdu.Body {
	d := pdu.NewDeliverSM()
	f := d.Fields()
	ton, npi := addrType(from)
	f.Set(pdufield.SourceAddrTON, ton)
	f.Set(pdufield.SourceAddrNPI, npi)
	f.Set(pdufield.SourceAddr, from)
	ton, npi = addrType(to)
	f.Set(pdufield.DestAddrTON, ton)
	f.Set(pdufield.DestAddrNPI, npi)
	f.Set(pdufield.DestinationAddr, to)
	return d
}

// addrType chooses TON and NPI as carriers do: alphanumeric 5/0,
// international MSISDN 1/1, short code 0/1.
func addrType(addr string) (ton, npi uint8) {
	for _, c := range addr {
		if c < '0' || c > '9' {
			return 5, 0
		}
	}
	if len(addr) > 8 {
		return 1, 1
	}
	return 0, 1
}

// sarOf reads the SAR TLVs of a concatenated message sent without a UDH.
func sarOf(tlv pdutlv.Map) *smpp.SAR {
	ref, total, seq := tlv[pdutlv.TagSarMsgRefNum], tlv[pdutlv.TagSarTotalSegments], tlv[pdutlv.TagSarSegmentSeqnum]
	if ref == nil || total == nil || seq == nil || len(ref.Bytes()) != 2 || len(total.Bytes()) != 1 || len(seq.Bytes()) != 1 {
		return nil
	}
	r := ref.Bytes()
	return &smpp.SAR{Ref: uint16(r[0])<<8 | uint16(r[1]), Total: total.Bytes()[0], Seq: seq.Bytes()[0]}
}

// ussdOf returns the USSD TLVs in hex, or nil when there are none.
func ussdOf(tlv pdutlv.Map) map[string]string {
	var m map[string]string
	for tag, name := range map[pdutlv.Tag]string{
		pdutlv.TagUssdServiceOp:  "ussd_service_op",
		pdutlv.TagItsSessionInfo: "its_session_info",
	} {
		if v := tlv[tag]; v != nil {
			if m == nil {
				m = make(map[string]string)
			}
			m[name] = hex.EncodeToString(v.Bytes())
		}
	}
	return m
}

func fieldString(f pdufield.Map, name pdufield.Name) string {
	if v := f[name]; v != nil {
		return v.String()
	}
	return ""
}

func fieldBytes(f pdufield.Map, name pdufield.Name) []byte {
	if v := f[name]; v != nil {
		return v.Bytes()
	}
	return nil
}

func fieldByte(f pdufield.Map, name pdufield.Name) uint8 {
	if v, ok := f[name].(*pdufield.Fixed); ok {
		return v.Data
	}
	return 0
}
