package smpp

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"

	"github.com/payswitch/payswitch/internal/mask"
)

// Submit sends m to its recipient as one or more submit_sm (split by Encode), waiting
// for the TPS limiter and a window slot for each, and returns the SMSC's message ids of
// all parts. With m.USSD set the text goes as one submit_sm carrying ussd_service_op
// (and its_session_info when given), never split. It fails with ErrNotBound while the
// link is down and with a *StatusError when the SMSC refuses; see IsTemporary.
//
// A throttling answer (ESME_RTHROTTLED, ESME_RMSGQFUL) pauses every submit_sm of the
// link, 0.5 s at first and doubling while the SMSC keeps refusing, and the part is sent
// again, up to four times, before Submit returns the refusal. The SMSC did not take a
// refused part, so sending it again duplicates nothing.
//
// After a part fails the earlier parts are already sent: a retry sends them again with
// the same concatenation reference, which phones ignore as duplicates. A response
// timeout (ErrTimeout) or a lost connection (ErrConnLost) leaves the SMSC's decision
// unknown; see MT.Late and Sender.
func (l *Link) Submit(ctx context.Context, m MT) ([]string, error) {
	to, from := normalizeAddr(m.To), normalizeAddr(m.From)
	if to == "" || len(to) > 20 {
		l.failed.Add(1)
		return nil, fmt.Errorf("smpp: %s: %w %q", l.cfg.Name, ErrBadAddress, mask.MSISDN(to))
	}
	if l.txSession() == nil {
		l.metrics.submitError("not_bound")
		l.failed.Add(1)
		return nil, fmt.Errorf("smpp: %s: %w", l.cfg.Name, ErrNotBound)
	}
	segs := segmentsOf(to, m)
	ids := make([]string, 0, len(segs))
	for i, seg := range segs {
		var late func(pdu.Body)
		if i == len(segs)-1 && m.Late != nil {
			late = l.lateHook(append([]string(nil), ids...), m.Late)
		}
		id, err := l.submitSegment(ctx, to, from, seg, m, late)
		if err != nil {
			l.metrics.submitError(errorLabel(err))
			l.failed.Add(1)
			return ids, fmt.Errorf("smpp: %s: part %d/%d to %s: %w", l.cfg.Name, i+1, len(segs), mask.MSISDN(to), err)
		}
		l.metrics.message("out")
		l.submitted.Add(1)
		ids = append(ids, id)
	}
	return ids, nil
}

// segmentsOf encodes m's text: one unsplit segment for USSD, otherwise concatenated
// parts whose reference is derived from the recipient and the text.
func segmentsOf(to string, m MT) []Segment {
	if m.USSD != nil {
		return []Segment{encodeWhole(m.Text)}
	}
	return Encode(m.Text, concatRef(to, m.Text))
}

// lateHook returns the function that takes a submit_sm_resp arriving after its
// timeout: an OK answer completes the message with the earlier parts' ids.
func (l *Link) lateHook(earlier []string, done func([]string)) func(pdu.Body) {
	return func(resp pdu.Body) {
		if st := uint32(resp.Header().Status); st != 0 || resp.Header().ID == pdu.GenericNACKID {
			l.log.Info().Uint32("status", st).Msg("smpp late submit_sm_resp refused the message; its retry stands")
			return
		}
		l.metrics.message("out")
		l.submitted.Add(1)
		l.log.Info().Msg("smpp late submit_sm_resp accepted the message")
		done(append(earlier, fieldString(resp.Fields(), pdufield.MessageID)))
	}
}

// submitSegment sends one part, pausing and sending again while the SMSC throttles.
func (l *Link) submitSegment(ctx context.Context, to, from string, seg Segment, m MT, late func(pdu.Body)) (string, error) {
	for attempt := 0; ; attempt++ {
		if err := l.waitPause(ctx); err != nil {
			return "", err
		}
		id, err := l.submitOnce(ctx, to, from, seg, m, late)
		var se *StatusError
		if errors.As(err, &se) && (se.Status == StatusThrottled || se.Status == StatusMsgQFul) {
			l.throttled.Add(1)
			l.pause()
			if attempt < throttleRetries {
				l.metrics.submitError(errorLabel(err))
				continue
			}
			return "", err
		}
		if err == nil {
			l.pmu.Lock()
			l.pauseStep = 0
			l.pmu.Unlock()
		}
		return id, err
	}
}

// pause holds back every submit_sm of the link after a throttling answer. Answers to
// submit_sm sent before the pause began do not lengthen it: only a refusal after a
// pause has run out doubles the next one.
func (l *Link) pause() {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	now := time.Now()
	if now.Before(l.pauseUntil) {
		return
	}
	l.pauseStep = min(max(2*l.pauseStep, l.throttlePause), max(maxThrottlePause, l.throttlePause))
	l.pauseUntil = now.Add(l.pauseStep)
	l.log.Warn().Dur("pause", l.pauseStep).Msg("smpp SMSC throttles; pausing submit_sm")
}

// waitPause returns once the link is not paused for throttling, or when ctx ends.
func (l *Link) waitPause(ctx context.Context) error {
	for {
		l.pmu.Lock()
		d := time.Until(l.pauseUntil)
		l.pmu.Unlock()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// submitOnce sends one submit_sm and waits for its response.
func (l *Link) submitOnce(ctx context.Context, to, from string, seg Segment, m MT, late func(pdu.Body)) (string, error) {
	if err := l.limiter.Wait(ctx); err != nil {
		return "", err
	}
	select {
	case l.window <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	l.metrics.inFlight(1)
	defer func() { <-l.window; l.metrics.inFlight(-1) }()
	s := l.txSession()
	if s == nil {
		return "", ErrNotBound
	}
	tlvs := pdutlv.Fields{}
	if m.USSD != nil {
		tlvs[tagUssdServiceOp] = m.USSD.ServiceOp
		if len(m.USSD.SessionInfo) > 0 {
			tlvs[tagItsSessionInfo] = m.USSD.SessionInfo
		}
	}
	if m.Ref != 0 {
		tlvs[tagUserMessageRef] = []byte{byte(m.Ref >> 8), byte(m.Ref)}
	}
	sm := seg.ShortMessage
	if len(sm) > 254 { // longer than sm_length can say: message_payload carries it
		tlvs[tagMessagePayload] = sm
		sm = nil
	}
	p := pdu.NewSubmitSM(tlvs)
	f := p.Fields()
	setAddressing(f, from, to, seg)
	var reg uint8
	if m.Receipt {
		reg = 0x01 // SMSC delivery receipt on success or failure
	}
	f.Set(pdufield.RegisteredDelivery, reg)
	f.Set(pdufield.ShortMessage, sm)
	resp, err := s.requestLate(ctx, p, late, l.lateWindow)
	if err != nil {
		return "", err
	}
	if st := uint32(resp.Header().Status); st != 0 || resp.Header().ID == pdu.GenericNACKID {
		if st == 0 {
			st = StatusSysErr
		}
		return "", &StatusError{Command: "submit_sm", Status: st}
	}
	return fieldString(resp.Fields(), pdufield.MessageID), nil
}

// txSession returns the session submit_sm goes over, or nil when not bound.
func (l *Link) txSession() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tx
}

// encodeWhole encodes text as one unsplit segment (USSD): GSM 7-bit when it fits,
// otherwise UCS-2.
func encodeWhole(text string) Segment {
	if septets, ok := gsmSeptets(text); ok {
		return Segment{DataCoding: CodingGSM7, ShortMessage: septets}
	}
	return Segment{DataCoding: CodingUCS2, ShortMessage: ucs2Bytes(text)}
}

// concatRef derives the concatenation reference from the recipient and the text, so
// that a retried message carries the same reference and a phone that got some parts the
// first time ignores them as duplicates instead of showing a broken message.
func concatRef(to, text string) uint8 {
	h := fnv.New32a()
	h.Write([]byte(to))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return uint8(h.Sum32())
}

// addrType chooses TON and NPI for an address: alphanumeric (5/0), international
// MSISDN (1/1), or a short code (0 unknown / 1 ISDN).
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

// normalizeAddr strips spaces and a leading '+'.
func normalizeAddr(a string) string {
	return strings.TrimPrefix(strings.TrimSpace(a), "+")
}

// setAddressing fills the fields that submit_sm and deliver_sm share: both addresses with
// their TON/NPI, and the segment's esm_class and data_coding.
func setAddressing(f pdufield.Map, from, to string, seg Segment) {
	srcTON, srcNPI := addrType(from)
	dstTON, dstNPI := addrType(to)
	f.Set(pdufield.SourceAddrTON, srcTON)
	f.Set(pdufield.SourceAddrNPI, srcNPI)
	f.Set(pdufield.SourceAddr, from)
	f.Set(pdufield.DestAddrTON, dstTON)
	f.Set(pdufield.DestAddrNPI, dstNPI)
	f.Set(pdufield.DestinationAddr, to)
	f.Set(pdufield.ESMClass, seg.ESMClass)
	f.Set(pdufield.DataCoding, seg.DataCoding)
}
