package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// headerLen is the length of the SMPP PDU header: command_length, command_id,
// command_status and sequence_number, four octets each.
const headerLen = pdu.HeaderLen

// respBit marks a command_id as a response.
const respBit = 0x80000000

// frameHeader is the undecoded header of a PDU, read before the body so that
// a bad command_length is caught before any allocation depends on it.
type frameHeader struct {
	Len    uint32
	ID     pdu.ID
	Status uint32
	Seq    uint32
}

func parseHeader(b []byte) frameHeader {
	return frameHeader{
		Len:    binary.BigEndian.Uint32(b[0:4]),
		ID:     pdu.ID(binary.BigEndian.Uint32(b[4:8])),
		Status: binary.BigEndian.Uint32(b[8:12]),
		Seq:    binary.BigEndian.Uint32(b[12:16]),
	}
}

// errFrameLength reports a command_length outside [16, max]; framing is lost
// after it, so the connection must be closed.
type errFrameLength struct {
	hdr frameHeader
	max uint32
}

func (e *errFrameLength) Error() string {
	return fmt.Sprintf("server: command_length %d outside [%d, %d]", e.hdr.Len, headerLen, e.max)
}

// readFrame reads one whole PDU (header and body) from r. It checks
// command_length against max before reading the body, so a hostile length
// never makes it allocate more than max bytes.
func readFrame(r io.Reader, max uint32) (frameHeader, []byte, error) {
	var hb [headerLen]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return frameHeader{}, nil, err
	}
	h := parseHeader(hb[:])
	if h.Len < headerLen || h.Len > max {
		return h, nil, &errFrameLength{hdr: h, max: max}
	}
	buf := make([]byte, h.Len)
	copy(buf, hb[:])
	if _, err := io.ReadFull(r, buf[headerLen:]); err != nil {
		return h, nil, err
	}
	return h, buf, nil
}

// newBody builds an empty body for id, for every command_id that go-smpp
// can decode. Command ids it lacks (data_sm, cancel_sm, replace_sm, outbind,
// alert_notification) are answered with generic_nack ESME_RINVCMDID.
func newBody(id pdu.ID) (pdu.Body, bool) {
	var p pdu.Body
	switch id {
	case pdu.GenericNACKID:
		p = pdu.NewGenericNACK()
	case pdu.BindReceiverID:
		p = pdu.NewBindReceiver()
	case pdu.BindReceiverRespID:
		p = pdu.NewBindReceiverResp()
	case pdu.BindTransmitterID:
		p = pdu.NewBindTransmitter()
	case pdu.BindTransmitterRespID:
		p = pdu.NewBindTransmitterResp()
	case pdu.BindTransceiverID:
		p = pdu.NewBindTransceiver()
	case pdu.BindTransceiverRespID:
		p = pdu.NewBindTransceiverResp()
	case pdu.QuerySMID:
		p = pdu.NewQuerySM()
	case pdu.QuerySMRespID:
		p = pdu.NewQuerySMResp()
	case pdu.SubmitSMID:
		p = pdu.NewSubmitSM(nil)
	case pdu.SubmitSMRespID:
		p = pdu.NewSubmitSMResp()
	case pdu.SubmitMultiID:
		p = pdu.NewSubmitMulti(nil)
	case pdu.SubmitMultiRespID:
		p = pdu.NewSubmitMultiResp()
	case pdu.DeliverSMID:
		p = pdu.NewDeliverSM()
	case pdu.DeliverSMRespID:
		p = pdu.NewDeliverSMResp()
	case pdu.UnbindID:
		p = pdu.NewUnbind()
	case pdu.UnbindRespID:
		p = pdu.NewUnbindResp()
	case pdu.EnquireLinkID:
		p = pdu.NewEnquireLink()
	case pdu.EnquireLinkRespID:
		p = pdu.NewEnquireLinkResp()
	default:
		return nil, false
	}
	return p, true
}

// errUnknownCommand reports a command_id that go-smpp has no body for.
type errUnknownCommand struct{ id pdu.ID }

func (e *errUnknownCommand) Error() string {
	return fmt.Sprintf("server: unsupported command_id %#08x", uint32(e.id))
}

// decodeFrame turns one whole PDU, as returned by readFrame, into a go-smpp
// body. Up to go-smpp's 4 KiB cap it is pdu.Decode; beyond it (a submit_sm
// with a large message_payload, up to MaxPDUSize) it does what pdu.Decode
// does, with the same field lists and TLV parser. It never panics on any
// input.
func decodeFrame(buf []byte) (p pdu.Body, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("server: decode panic: %v", r)
		}
	}()
	if len(buf) < headerLen {
		return nil, fmt.Errorf("server: short frame of %d octets", len(buf))
	}
	h := parseHeader(buf)
	if int(h.Len) != len(buf) {
		return nil, fmt.Errorf("server: command_length %d but frame of %d octets", h.Len, len(buf))
	}
	if len(buf) <= pdu.MaxSize {
		// go-smpp's own decoder, which is faster (it adopts the decoded maps
		// rather than copying them).
		p, err := pdu.Decode(bytes.NewReader(buf))
		if err != nil {
			if _, ok := newBody(h.ID); !ok {
				return nil, &errUnknownCommand{id: h.ID}
			}
			return nil, fmt.Errorf("server: decode %s: %w", h.ID, err)
		}
		return p, nil
	}
	return decodeLarge(buf)
}

// decodeLarge is pdu.Decode without its size cap: the same field lists and
// TLV parser, with the decoded values copied into a fresh body. buf must be a
// whole frame whose command_length matches its length.
func decodeLarge(buf []byte) (pdu.Body, error) {
	h := parseHeader(buf)
	p, ok := newBody(h.ID)
	if !ok {
		return nil, &errUnknownCommand{id: h.ID}
	}
	r := bytes.NewBuffer(buf[headerLen:])
	fields, err := p.FieldList().Decode(r)
	if err != nil {
		return nil, fmt.Errorf("server: decode %s body: %w", h.ID, err)
	}
	tlvs, err := pdutlv.DecodeTLV(r)
	if err != nil {
		return nil, fmt.Errorf("server: decode %s TLVs: %w", h.ID, err)
	}
	for k, v := range fields {
		p.Fields()[k] = v
	}
	for k, v := range tlvs {
		p.TLVFields()[k] = v
	}
	ph := p.Header()
	ph.Len, ph.Status, ph.Seq = h.Len, pdu.Status(h.Status), h.Seq
	return p, nil
}

// encodeFrame serializes p with its header. It differs from go-smpp's
// SerializeTo in three ways that matter on the wire:
//   - a deliver_sm without a split-out UDH gets no phantom UDH length octet
//     (go-smpp writes a 0x00 for the missing gsm_sms_ud.udh.len field, which
//     corrupts the message for every decoder);
//   - sm_length is computed from what is written, UDH included;
//   - a response with a non-zero command_status carries no body, as SMPP 3.4
//     asks (sections 4.1.2, 4.4.2, 4.6.2).
//
// TLVs are written in tag order so frames are reproducible.
func encodeFrame(p pdu.Body, max uint32) ([]byte, error) {
	h := p.Header()
	var body bytes.Buffer
	if !(h.Status != 0 && uint32(h.ID)&respBit != 0) {
		if err := encodeFields(&body, p); err != nil {
			return nil, err
		}
	}
	n := headerLen + body.Len()
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("server: %s of %d octets exceeds %d", h.ID, n, max)
	}
	out := make([]byte, headerLen, n)
	binary.BigEndian.PutUint32(out[0:4], uint32(n))
	binary.BigEndian.PutUint32(out[4:8], uint32(h.ID))
	binary.BigEndian.PutUint32(out[8:12], uint32(h.Status))
	binary.BigEndian.PutUint32(out[12:16], h.Seq)
	return append(out, body.Bytes()...), nil
}

func encodeFields(w *bytes.Buffer, p pdu.Body) error {
	f := p.Fields()
	for _, k := range p.FieldList() {
		v := f[k]
		switch k {
		case pdufield.UDHLength:
			if v == nil {
				continue // the UDH, if any, is inside short_message
			}
		case pdufield.GSMUserData:
			if v != nil {
				w.Write(udhBytes(v))
			}
			continue
		case pdufield.SMLength:
			n := smLength(f)
			if n > 254 {
				return fmt.Errorf("server: short_message of %d octets exceeds 254; use message_payload", n)
			}
			w.WriteByte(byte(n))
			continue
		}
		if v == nil {
			v = pdufield.New(k, nil)
			if v == nil {
				return fmt.Errorf("server: no default for field %s", k)
			}
		}
		if err := v.SerializeTo(w); err != nil {
			return fmt.Errorf("server: field %s: %w", k, err)
		}
	}
	tags := make([]int, 0, len(p.TLVFields()))
	for t := range p.TLVFields() {
		tags = append(tags, int(t))
	}
	sort.Ints(tags)
	for _, t := range tags {
		v := p.TLVFields()[pdutlv.Tag(t)]
		if v == nil {
			continue
		}
		if v.Len() > 0xFFFF+4 {
			return fmt.Errorf("server: TLV %#04x too long", t)
		}
		if err := v.SerializeTo(w); err != nil {
			return fmt.Errorf("server: TLV %#04x: %w", t, err)
		}
	}
	return nil
}

// smLength is the sm_length to write: the octets of short_message plus, when
// the UDH was split out by go-smpp's deliver_sm decoder, the UDH and its
// length octet.
func smLength(f pdufield.Map) int {
	n := 0
	if sm := f[pdufield.ShortMessage]; sm != nil {
		n = len(sm.Bytes())
	}
	if udhl := f[pdufield.UDHLength]; udhl != nil {
		n += udhl.Len()
		if ud := f[pdufield.GSMUserData]; ud != nil {
			n += len(udhBytes(ud))
		}
	}
	return n
}

// udhBytes is the wire form of a UDH that go-smpp's deliver_sm decoder split
// out of short_message. It avoids pdufield.UDHList.Bytes, which appends a NUL
// to each element's data in place, overwriting the first octet of the text
// that shares its buffer (and adds that NUL to the output too).
func udhBytes(v pdufield.Body) []byte {
	l, ok := v.(*pdufield.UDHList)
	if !ok {
		return v.Bytes()
	}
	var b []byte
	for _, e := range l.Data {
		b = append(b, e.IEI.Data, e.IELength.Data)
		b = append(b, e.IEData.Data...)
	}
	return b
}

// respID is the response command_id for request id, and whether go-smpp can
// build that response.
func respID(id pdu.ID) (pdu.ID, bool) {
	if uint32(id)&respBit != 0 {
		return 0, false
	}
	r := pdu.ID(uint32(id) | respBit)
	_, ok := newBody(r)
	return r, ok
}

// newResp builds the response to req with the given status, or a
// generic_nack when req's command has no response body in go-smpp.
func newResp(req frameHeader, status uint32) pdu.Body {
	p := pdu.NewGenericNACK()
	if id, ok := respID(req.ID); ok {
		p, _ = newBody(id)
	}
	h := p.Header()
	h.Seq, h.Status = req.Seq, pdu.Status(status)
	return p
}

// genericNack builds a generic_nack for seq with status.
func genericNack(seq, status uint32) pdu.Body {
	p := pdu.NewGenericNACK()
	h := p.Header()
	h.Seq, h.Status = seq, pdu.Status(status)
	return p
}
