package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	gosmpp "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// An aggregator binds to the switch's own SMPP server with go-smpp's client, relays a
// user's SMS as submit_sm to the shortcode and gets the switch's answers as deliver_sm.
func TestAggregatorOverOurSMPPServer(t *testing.T) {
	s, addr := startSwitchWithAggregator(t, "2547")
	w := s.open(map[string]string{"type": "wallet", "msisdn": "254711000001", "name": "Zed"})
	s.deposit(w.ID, 50000, "CASHIN-Z")

	got := make(chan string, 16)
	tx := &gosmpp.Transceiver{Addr: addr, User: "aggregator-x", Passwd: "agg-pw",
		Handler: func(p pdu.Body) {
			if p.Header().ID == pdu.DeliverSMID {
				got <- string(p.Fields()[pdufield.ShortMessage].Bytes())
			}
		}}
	status := tx.Bind()
	defer tx.Close()
	select {
	case st := <-status:
		if st.Error() != nil {
			t.Fatalf("bind: %v", st.Error())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bind timed out")
	}
	// The deposit notice was queued before the aggregator ever wrote for this number, so
	// it went out over the carrier link; from the first MO on, answers come back here.
	if _, err := tx.Submit(&gosmpp.ShortMessage{Src: "254711000001", Dst: "22333", Text: pdutext.Raw("BAL")}); err != nil {
		t.Fatalf("submit_sm: %v", err)
	}
	select {
	case txt := <-got:
		if !strings.Contains(txt, "KES 500.00") {
			t.Fatalf("deliver_sm = %q", txt)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no deliver_sm with the answer")
	}

	bad := &gosmpp.Transceiver{Addr: addr, User: "aggregator-x", Passwd: "wrong"}
	st := <-bad.Bind()
	bad.Close()
	if st.Error() == nil {
		t.Fatal("a wrong password bound")
	}
}

func TestAggregatorRelaysUSSD(t *testing.T) {
	s, addr := startSwitchWithAggregator(t, "2547")
	w := s.open(map[string]string{"type": "wallet", "msisdn": "254711000001", "name": "Zed"})
	s.deposit(w.ID, 50000, "CASHIN-Z")
	type screen struct {
		op   []byte
		text string
	}
	got := make(chan screen, 16)
	tx := &gosmpp.Transceiver{Addr: addr, User: "aggregator-x", Passwd: "agg-pw",
		Handler: func(p pdu.Body) {
			if p.Header().ID == pdu.DeliverSMID {
				var op []byte
				if v := p.TLVFields()[pdutlv.TagUssdServiceOp]; v != nil {
					op = v.Bytes()
				}
				got <- screen{op, string(p.Fields()[pdufield.ShortMessage].Bytes())}
			}
		}}
	status := tx.Bind()
	defer tx.Close()
	if st := <-status; st.Error() != nil {
		t.Fatalf("bind: %v", st.Error())
	}
	ussd := func(op uint8, text string) screen {
		t.Helper()
		_, err := tx.Submit(&gosmpp.ShortMessage{Src: "254711000001", Dst: "*384#", Text: pdutext.Raw(text),
			TLVFields: pdutlv.Fields{pdutlv.TagUssdServiceOp: op, pdutlv.TagItsSessionInfo: []byte{0, 1}}})
		if err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case sc := <-got:
				if sc.op != nil {
					return sc
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no USSD screen")
			}
		}
	}
	// Each screen goes back to the aggregator as deliver_sm with ussd_service_op: 2 (USSR
	// request) to continue, 17 (PSSR response) to end.
	if menu := ussd(1, "*384#"); len(menu.op) != 1 || menu.op[0] != 2 || !strings.Contains(menu.text, "4. My account") {
		t.Fatalf("menu = %v %q", menu.op, menu.text)
	}
	ussd(18, "4")
	if bal := ussd(18, "1"); len(bal.op) != 1 || bal.op[0] != 17 || !strings.Contains(bal.text, "500.00") {
		t.Fatalf("balance screen = %v %q", bal.op, bal.text)
	}
}

// startSwitchWithAggregator starts a switch whose SMPP server listens on a free loopback
// port with one account, aggregator-x (password agg-pw), that may send from numbers
// starting with prefix; it returns the switch and the server's address.
func startSwitchWithAggregator(t *testing.T, prefix string) (*testSwitch, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return startSwitchWithSMPP(t, fmt.Sprintf(`  server:
    listen: %s
    accounts:
      - system_id: aggregator-x
        password: agg-pw
        prefixes: [%q]
`, addr, prefix)), addr
}
