package smpp

import (
	"context"
	"runtime/debug"
	"strings"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/mask"
)

// onDeliver runs on the session's reader: it must not block. The handler runs in its
// own goroutine, bounded by moSlots; when all are busy the SMSC is told to retry.
func (l *Link) onDeliver(hctx context.Context, s *session, p pdu.Body, esm uint8) {
	arrived := time.Now() // an observation for the metrics; it decides nothing
	seq := p.Header().Seq
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		s.respond(pdu.DeliverSMID, seq, StatusRxTempAppn)
		return
	}
	select {
	case l.moSlots <- struct{}{}:
	default:
		l.mu.Unlock()
		s.respond(pdu.DeliverSMID, seq, StatusRxTempAppn)
		return
	}
	l.handlers.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.handlers.Done()
		defer func() { <-l.moSlots }()
		ctx, cancel := context.WithTimeout(hctx, handlerTimeout)
		defer cancel()
		status, kind := StatusRxTempAppn, "mo"
		defer func() {
			// One bad message must not take the switch down; the SMSC tries again.
			if r := recover(); r != nil {
				l.log.Error().Interface("panic", r).Bytes("stack", debug.Stack()).Msg("smpp deliver_sm handling panicked")
			}
			l.metrics.deliverAnswered(kind, time.Since(arrived))
			s.respond(pdu.DeliverSMID, seq, status)
		}()
		receipt := isReceipt(p, esm)
		if receipt {
			kind = "receipt"
		}
		status = l.deliver(ctx, p, esm, receipt)
	}()
}

// deliver turns a deliver_sm into an MO or a Receipt (receipt: isReceipt, as the caller
// worked it out) for the handler and returns the command status to answer.
func (l *Link) deliver(ctx context.Context, p pdu.Body, esm uint8, receipt bool) uint32 {
	f, tlv := p.Fields(), p.TLVFields()
	from := normalizeAddr(fieldString(f, pdufield.SourceAddr))
	to := normalizeAddr(fieldString(f, pdufield.DestinationAddr))
	coding := fieldByte(f, pdufield.DataCoding)
	sm := fieldBytes(f, pdufield.ShortMessage)
	if len(sm) == 0 {
		if pl, ok := tlv[tagMessagePayload]; ok {
			sm = pl.Bytes()
		}
	}
	l.metrics.message("in")
	l.received.Add(1)
	seq := p.Header().Seq
	// Only failures are logged, so the fields are added to the event then, not to a
	// child logger built for every deliver_sm.
	about := func(e *zerolog.Event) *zerolog.Event { return e.Str("from", mask.MSISDN(from)).Uint32("seq", seq) }

	if receipt {
		r := parseReceipt(coding, sm, tlv)
		r.Link = l.cfg.Name
		if err := l.h.HandleReceipt(ctx, r); err != nil {
			about(l.quiet.Event("receipt", l.log.Error())).Err(err).Str("message_id", r.MessageID).
				Msg("smpp receipt handler failed; SMSC will redeliver")
			return StatusRxTempAppn
		}
		return StatusOK
	}
	if esm&0x3C != 0 { // SME delivery or manual/user acknowledgement: nothing to do
		return StatusOK
	}

	var ussd *USSDInfo
	if op, ok := tlv[tagUssdServiceOp]; ok && len(op.Bytes()) == 1 {
		ussd = &USSDInfo{ServiceOp: op.Bytes()[0]}
		if si, ok := tlv[tagItsSessionInfo]; ok {
			ussd.SessionInfo = append([]byte(nil), si.Bytes()...)
		}
	}
	part, err := Decode(coding, esm, sm, sarOf(tlv))
	if err != nil {
		about(l.log.Warn()).Err(err).Uint8("data_coding", coding).Msg("smpp undecodable MO refused")
		return StatusRxPermAppn
	}
	now := time.Now()
	text := part.Text
	if ussd == nil {
		var complete bool
		if text, complete, err = l.reasm.take(from, part, now); err != nil {
			about(l.quiet.Event("reassembly", l.log.Warn())).Err(err).Msg("smpp concatenated MO part refused")
			return linkRefusal(err)
		}
		if !complete {
			return StatusOK // kept in memory; see the Link comment
		}
	}
	m := MO{Link: l.cfg.Name, From: from, To: to, Text: text, Received: now, USSD: ussd}
	if err := l.h.HandleMO(ctx, m); err != nil {
		about(l.quiet.Event("mo", l.log.Error())).Err(err).Msg("smpp MO handler failed; SMSC will redeliver")
		return StatusRxTempAppn
	}
	if ussd == nil {
		l.reasm.finish(from, part)
	}
	return StatusOK
}

// messageStates names the message_state TLV values as receipts spell them.
var messageStates = map[byte]string{
	1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED",
	5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD",
}

// parseReceipt reads a delivery receipt: the receipted_message_id and message_state TLVs
// when present, otherwise the de-facto standard text of SMPP 3.4 Appendix B,
// "id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...".
func parseReceipt(coding uint8, sm []byte, tlv pdutlv.Map) Receipt {
	text := string(sm)
	if p, err := Decode(coding, 0, sm, nil); err == nil {
		text = p.Text
	}
	var r Receipt
	r.MessageID = receiptField(text, "id")
	r.Status = strings.ToUpper(receiptField(text, "stat"))
	r.Err = receiptField(text, "err")
	if t, ok := tlv[tagReceiptedMessageID]; ok {
		if id := strings.TrimRight(string(t.Bytes()), "\x00"); id != "" {
			r.MessageID = id
		}
	}
	if t, ok := tlv[tagMessageState]; ok && len(t.Bytes()) == 1 {
		if st, ok := messageStates[t.Bytes()[0]]; ok {
			r.Status = st
		}
	}
	if r.Status == "" {
		r.Status = "UNKNOWN"
	}
	return r
}

// receiptField returns the value of "key:" in a receipt text: the first occurrence at
// the start or after a space, up to the next space. Keys are matched without case.
func receiptField(text, key string) string {
	lower := asciiLower(text)
	key += ":"
	for i := 0; ; {
		j := strings.Index(lower[i:], key)
		if j < 0 {
			return ""
		}
		j += i
		if j == 0 || lower[j-1] == ' ' {
			v := text[j+len(key):]
			if k := strings.IndexByte(v, ' '); k >= 0 {
				v = v[:k]
			}
			return v
		}
		i = j + 1
	}
}

// asciiLower lowers A-Z only, so that every byte keeps its offset: strings.ToLower
// turns invalid UTF-8 into U+FFFD, three bytes, and the offsets found in its result
// would no longer index text (a receipt from a broken SMSC then panicked).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func fieldString(f pdufield.Map, k pdufield.Name) string {
	if v, ok := f[k]; ok && v != nil {
		return v.String()
	}
	return ""
}

func fieldByte(f pdufield.Map, k pdufield.Name) uint8 {
	if v, ok := f[k]; ok && v != nil {
		if b := v.Bytes(); len(b) > 0 {
			return b[0]
		}
	}
	return 0
}

func fieldBytes(f pdufield.Map, k pdufield.Name) []byte {
	if v, ok := f[k]; ok && v != nil {
		return v.Bytes()
	}
	return nil
}

// isReceipt reports whether deliver_sm p (with esm_class esm) is a delivery receipt or
// an intermediate notification rather than an MO.
func isReceipt(p pdu.Body, esm uint8) bool {
	msgType := esm & 0x3C
	_, hasReceiptID := p.TLVFields()[tagReceiptedMessageID]
	return msgType == 0x04 || msgType == 0x20 || hasReceiptID
}
