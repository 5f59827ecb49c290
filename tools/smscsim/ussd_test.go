package smscsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// submitUSSD sends a USSD submit_sm from the raw ESME and waits for its response.
func (e *rawESME) submitUSSD(t *testing.T, to, text string, op uint8, info []byte) {
	t.Helper()
	sub := pdu.NewSubmitSM(pdutlv.Fields{pdutlv.TagUssdServiceOp: op, pdutlv.TagItsSessionInfo: info})
	sub.Fields().Set(pdufield.SourceAddr, shortcode)
	sub.Fields().Set(pdufield.DestinationAddr, to)
	sub.Fields().Set(pdufield.ShortMessage, text)
	e.write(t, sub)
	if r := e.read(t); r.Header().ID != pdu.SubmitSMRespID || r.Header().Status != 0 {
		t.Fatalf("submit_sm_resp %s %v", r.Header().ID, r.Header().Status)
	}
}

// postUSSD posts to the phone API's /ussd and returns the status.
func postUSSD(t *testing.T, base, from, text string) int {
	t.Helper()
	body, _ := json.Marshal(USSDInput{From: from, Text: text})
	resp, err := http.Post(base+"/ussd", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// getScreen reads the phone API's /ussd for phone; ok is false on 404.
func getScreen(t *testing.T, base, msisdn string) (sc USSDScreen, ok bool) {
	t.Helper()
	resp, err := http.Get(base + "/ussd?msisdn=" + msisdn)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return sc, false
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ussd: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&sc); err != nil {
		t.Fatal(err)
	}
	return sc, true
}

// wantUSSD reads the next deliver_sm, acknowledges it and checks its USSD.
func (e *rawESME) wantUSSD(t *testing.T, from, to, text string, op uint8, info []byte) {
	t.Helper()
	p := e.read(t)
	e.ack(t, p, 0)
	f, tlv := p.Fields(), p.TLVFields()
	if got := f[pdufield.SourceAddr].String(); got != from {
		t.Fatalf("source_addr %q, want %q", got, from)
	}
	if got := f[pdufield.DestinationAddr].String(); got != to {
		t.Fatalf("destination_addr %q, want %q", got, to)
	}
	if got := string(rawShortMessage(p)); got != text {
		t.Fatalf("text %q, want %q", got, text)
	}
	if v := tlv[pdutlv.TagUssdServiceOp]; v == nil || !bytes.Equal(v.Bytes(), []byte{op}) {
		t.Fatalf("ussd_service_op %v, want %#x", v, op)
	}
	if v := tlv[pdutlv.TagItsSessionInfo]; v == nil || !bytes.Equal(v.Bytes(), info) {
		t.Fatalf("its_session_info %v, want %x", v, info)
	}
}

// A screen the network pushes waits for the phone's answer, which goes back as a USSR
// confirm with the screen's session; the ESME's END closes it. A phone that keys
// something in with no screen waiting dials it, when it is a service code.
func TestUSSDScreensOfAPhone(t *testing.T) {
	s := mustStart(t, Config{PhoneAPI: "127.0.0.1:0"})
	e := dialRawESME(t, s)
	base := "http://" + s.PhoneAddr()
	if _, ok := getScreen(t, base, phone); ok {
		t.Fatal("a screen before any USSD")
	}
	if code := postUSSD(t, base, phone, "1"); code != http.StatusConflict {
		t.Fatalf("answer with no screen: %d", code)
	}

	const push = "Mama Mboga (55501) asks KES 150.00.\n1. Pay\n2. Refuse"
	e.submitUSSD(t, phone, push, 0x02, []byte{0x51, 0})
	sc, ok := getScreen(t, base, phone)
	if !ok || !sc.Open || sc.Text != push || sc.Session != 0x51 || sc.From != shortcode {
		t.Fatalf("pushed screen %+v", sc)
	}
	if code := postUSSD(t, base, phone, "1"); code != http.StatusAccepted {
		t.Fatalf("answer: %d", code)
	}
	e.wantUSSD(t, phone, shortcode, "1", 0x12, []byte{0x51, 2})
	if sc, _ := getScreen(t, base, phone); sc.Open {
		t.Fatal("the screen still waits after its answer")
	}
	if err := s.AnswerUSSD(ctxT(t), phone, "1"); !errors.Is(err, ErrNoUSSDScreen) {
		t.Fatalf("a second answer to one screen: %v", err)
	}
	e.submitUSSD(t, phone, "Enter the code", 0x02, []byte{0x51, 2})
	if err := s.AnswerUSSD(ctxT(t), phone, "123456"); err != nil {
		t.Fatal(err)
	}
	e.wantUSSD(t, phone, shortcode, "123456", 0x12, []byte{0x51, 4})
	e.submitUSSD(t, phone, "Paid.", 0x11, []byte{0x51, 4})
	if sc, ok := getScreen(t, base, phone); !ok || sc.Open || sc.Text != "Paid." {
		t.Fatalf("END screen %+v", sc)
	}

	// Nothing waits: "*384*4#" dials, with a session number of the sim's.
	if code := postUSSD(t, base, phone, "hello"); code != http.StatusConflict {
		t.Fatalf("not a service code: %d", code)
	}
	if code := postUSSD(t, base, phone, " *384*4# "); code != http.StatusAccepted {
		t.Fatalf("dial: %d", code)
	}
	e.wantUSSD(t, phone, "*384#", "*384*4#", 0x01, []byte{1, 0})
	if _, ok := getScreen(t, base, phone); ok {
		t.Fatal("the old screen stays after a dial")
	}
	if err := s.DialUSSD(ctxT(t), phone, "*384**4#"); !errors.Is(err, ErrBadDial) {
		t.Fatalf("bad dial: %v", err)
	}
	for _, bad := range []string{`{"text":"1"}`, `{"from":1}`, `nope`} {
		resp, err := http.Post(base+"/ussd", "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /ussd %s: %d", bad, resp.StatusCode)
		}
	}
}

// A screen times out as the network's dialogue does; an unreachable phone shows none.
func TestUSSDScreenTimeoutAndReach(t *testing.T) {
	s := mustStart(t, Config{Unreachable: []string{"254700000002"}})
	e := dialRawESME(t, s)
	e.submitUSSD(t, phone, "1. Pay\n2. Refuse", 0x02, []byte{0x07, 0})
	s.mu.Lock()
	s.screens[phone].Time = time.Now().Add(-USSDTimeout) // the screen waited its time
	s.mu.Unlock()
	if sc, ok := s.USSDScreen(phone); !ok || sc.Open {
		t.Fatalf("timed out screen %+v", sc)
	}
	if err := s.AnswerUSSD(ctxT(t), phone, "1"); !errors.Is(err, ErrNoUSSDScreen) {
		t.Fatalf("answer after the timeout: %v", err)
	}
	e.submitUSSD(t, "254700000002", "1. Pay\n2. Refuse", 0x02, []byte{0x08, 0})
	if _, ok := s.USSDScreen("254700000002"); ok {
		t.Fatal("an unreachable phone shows a screen")
	}
}

func TestUSSDScreensCapped(t *testing.T) {
	s := mustStart(t, Config{})
	t0 := time.Now()
	s.mu.Lock()
	for i := range maxUSSDScreens + 5 {
		s.showUSSDLocked(MT{To: fmt.Sprintf("2547%08d", i), Text: "1. Pay", Time: t0.Add(time.Duration(i))}, 0x02, []byte{1, 0})
	}
	n := len(s.screens)
	s.mu.Unlock()
	if n != maxUSSDScreens {
		t.Fatalf("%d screens kept, want %d", n, maxUSSDScreens)
	}
	if _, ok := s.USSDScreen(fmt.Sprintf("2547%08d", 0)); ok {
		t.Fatal("the oldest screen was kept")
	}
	if _, ok := s.USSDScreen(fmt.Sprintf("2547%08d", maxUSSDScreens+4)); !ok {
		t.Fatal("the newest screen was dropped")
	}
}

func TestIsDial(t *testing.T) {
	for text, want := range map[string]bool{
		"*384#": true, "*384*2*55501#": true, "*1#": true,
		"384#": false, "*384": false, "*#": false, "**#": false, "*384**1#": false, "*38a#": false, "": false, "#": false,
	} {
		if IsDial(text) != want {
			t.Errorf("IsDial(%q) = %v", text, !want)
		}
	}
}
