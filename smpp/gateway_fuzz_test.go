package smpp

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/store"
	"github.com/rs/zerolog"
)

// FuzzGatewaySubmit hands whatever go-smpp decodes as a submit_sm to the Gateway's MO
// path: address checks, text decoding, concatenation, USSD and the pin. It must answer
// every one with a status and never panic.
func FuzzGatewaySubmit(f *testing.F) {
	db, err := store.Open(filepath.Join(f.TempDir(), "payswitch.db"), store.Options{Synchronous: "OFF"}, GatewaySchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	g, err := NewGateway(GatewayConfig{Shortcode: "22333", Accounts: []GatewayAccount{{SystemID: "agg", Password: "pw", Prefixes: []string{"2547"}}}},
		db, HandlerFuncs{}, zerolog.Nop(), nil)
	if err != nil {
		f.Fatal(err)
	}
	a := g.accounts["agg"]
	submit := func(src, dst string, esm, coding uint8, sm []byte, tlvs pdutlv.Fields) []byte {
		p := pdu.NewSubmitSM(tlvs)
		p.Fields().Set(pdufield.SourceAddr, src)
		p.Fields().Set(pdufield.DestinationAddr, dst)
		p.Fields().Set(pdufield.ESMClass, esm)
		p.Fields().Set(pdufield.DataCoding, coding)
		p.Fields().Set(pdufield.ShortMessage, sm)
		return serialize(f, p, 1)
	}
	f.Add(submit("254700000001", "22333", 0, CodingGSM7, []byte("PAY 55501 150"), nil))
	f.Add(submit("254700000001", "22333", ESMClassUDHI, CodingUCS2, []byte{5, 0, 3, 1, 2, 1, 0, 'h'}, nil))
	f.Add(submit("254700000001", "22333", 0, CodingGSM7, []byte("1"), pdutlv.Fields{tagUssdServiceOp: uint8(1)}))
	f.Add(submit("254700000001", "22333", 0, CodingGSM7, nil, pdutlv.Fields{tagMessagePayload: []byte("payload")}))
	f.Add(submit("+254700000001", "+22333", 0, CodingGSM7, []byte("x"),
		pdutlv.Fields{tagSarMsgRefNum: []byte{0, 1}, tagSarTotalSegments: uint8(2), tagSarSegmentSeqnum: uint8(1)}))
	f.Add(submit("abc", "99999", 0, 0x99, []byte{0xff}, nil))
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := decodeSubmit(frame)
		if err != nil || p.Header().ID != pdu.SubmitSMID {
			return
		}
		g.submit(context.Background(), a, p, g.newID())
	})
}

// decodeSubmit decodes a frame as smpp/server would hand it over (go-smpp's decoder,
// whose panics the server turns into errors).
func decodeSubmit(frame []byte) (p pdu.Body, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("decode panic: %v", r)
		}
	}()
	return pdu.Decode(bytes.NewReader(frame))
}
