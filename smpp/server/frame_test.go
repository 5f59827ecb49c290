package server

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

func serialize(t testing.TB, p pdu.Body) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEncodeFrameDeliverSM(t *testing.T) {
	tests := []struct {
		name string
		esm  uint8
		sm   []byte
	}{
		{"no UDH", 0, []byte("hi")},
		{"with UDH", 0x40, []byte{5, 0, 3, 1, 2, 1, 'h', 'i'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := pdu.NewDeliverSM()
			d.Fields().Set(pdufield.ESMClass, tt.esm)
			d.Fields().Set(pdufield.ShortMessage, tt.sm)
			d.TLVFields().Set(pdutlv.TagReceiptedMessageID, pdutlv.CString("m1"))
			b, err := encodeFrame(d, DefaultMaxPDUSize)
			if err != nil {
				t.Fatal(err)
			}
			// The last octets before the TLV are sm_length then the message.
			tlvLen := 4 + 3
			end := len(b) - tlvLen
			if got := b[end-len(tt.sm) : end]; !bytes.Equal(got, tt.sm) {
				t.Fatalf("short_message % x, want % x", got, tt.sm)
			}
			if got := b[end-len(tt.sm)-1]; int(got) != len(tt.sm) {
				t.Fatalf("sm_length %d, want %d", got, len(tt.sm))
			}
			// go-smpp's own decoder reads it back to the same message, and
			// our encoder reproduces the frame from what it decoded.
			p, err := pdu.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			again, err := encodeFrame(p, DefaultMaxPDUSize)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoded\n% x\nwant\n% x", again, b)
			}
		})
	}
}

func TestEncodeFrameErrorResponseHasNoBody(t *testing.T) {
	r := pdu.NewSubmitSMResp()
	r.Header().Status = pdu.Status(StatusThrottled)
	b, err := encodeFrame(r, DefaultMaxPDUSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != headerLen {
		t.Fatalf("error response of %d octets, want header only", len(b))
	}
}

func TestEncodeFrameRefusesOversized(t *testing.T) {
	p := pdu.NewSubmitSM(pdutlv.Fields{pdutlv.TagMessagePayload: make([]byte, 2000)})
	if _, err := encodeFrame(p, 1024); err == nil {
		t.Fatal("want an error for a PDU over the limit")
	}
	p.Fields().Set(pdufield.ShortMessage, make([]byte, 300))
	if _, err := encodeFrame(p, DefaultMaxPDUSize); err == nil {
		t.Fatal("want an error for a short_message over 254 octets")
	}
}

func TestReadFrameRejectsBadLength(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"below header", []byte{0, 0, 0, 15, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"zero", make([]byte, 16)},
		{"above max", []byte{0, 1, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readFrame(bytes.NewReader(tt.in), 4096)
			var le *errFrameLength
			if !errors.As(err, &le) {
				t.Fatalf("err %v, want errFrameLength", err)
			}
		})
	}
}

// FuzzDecodeFrame feeds arbitrary bytes through framing and decoding: it must
// never panic, and whatever decodes must agree with go-smpp's own decoder
// (within its 4 KiB cap) and re-encode.
func FuzzDecodeFrame(f *testing.F) {
	seeds := []pdu.Body{pdu.NewEnquireLink(), pdu.NewUnbind(), pdu.NewBindTransceiver(), newSubmit("254700000001", "22333", "PAY 123 50")}
	d := pdu.NewDeliverSM()
	d.Fields().Set(pdufield.ESMClass, 0x40)
	d.Fields().Set(pdufield.ShortMessage, []byte{5, 0, 3, 9, 2, 1, 'a'})
	seeds = append(seeds, d, pdu.NewSubmitMulti(nil), pdu.NewQuerySMResp())
	for _, p := range seeds {
		f.Add(serialize(f, p))
	}
	f.Add([]byte{0, 0, 0, 16, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, buf, err := readFrame(bytes.NewReader(in), DefaultMaxPDUSize)
		if err != nil {
			return
		}
		p, err := decodeFrame(buf)
		if err != nil {
			return
		}
		encodeFrame(p, DefaultMaxPDUSize) // may refuse, must not panic
		// The path for frames beyond go-smpp's cap agrees with go-smpp.
		big, err := decodeLarge(buf)
		if err != nil {
			t.Fatalf("go-smpp decoded %s, the large-frame path failed: %v", p.Header().ID, err)
		}
		if big.Header().ID != p.Header().ID || big.Header().Seq != p.Header().Seq ||
			len(big.Fields()) != len(p.Fields()) || len(big.TLVFields()) != len(p.TLVFields()) {
			t.Fatalf("decoders disagree on %s", p.Header().ID)
		}
	})
}

func BenchmarkDecodeFrame(b *testing.B) {
	buf := serialize(b, newSubmit("254700000001", "22333", "PAY 4411 1,500.00 inv-7"))
	b.ReportAllocs()
	for range b.N {
		if _, err := decodeFrame(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	p := newSubmit("254700000001", "22333", "PAY 4411 1,500.00 inv-7")
	b.ReportAllocs()
	for range b.N {
		if _, err := encodeFrame(p, DefaultMaxPDUSize); err != nil {
			b.Fatal(err)
		}
	}
}
