package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/tools/smscsim"
)

// received is a deliver_sm as the ESME saw it.
type received struct {
	text string
	op   []byte // ussd_service_op; nil for an SMS
	info []byte // its_session_info
}

// pushingESME binds to sim and hands every deliver_sm to got; its USSD screens go out
// with push.
func pushingESME(t *testing.T, sim *smscsim.Sim) (push func(to, text string, op uint8, info []byte), got <-chan received) {
	t.Helper()
	ch := make(chan received, 16)
	trx := &smppcli.Transceiver{Addr: sim.Addr(), User: "payswitch", Passwd: "x", Handler: func(p pdu.Body) {
		if p.Header().ID != pdu.DeliverSMID {
			return
		}
		f, tlv := p.Fields(), p.TLVFields()
		part, err := smpp.Decode(f[pdufield.DataCoding].(*pdufield.Fixed).Data, 0, f[pdufield.ShortMessage].Bytes(), nil)
		if err != nil {
			t.Errorf("decode: %v", err)
			return
		}
		r := received{text: part.Text}
		if v := tlv[pdutlv.TagUssdServiceOp]; v != nil {
			r.op = v.Bytes()
		}
		if v := tlv[pdutlv.TagItsSessionInfo]; v != nil {
			r.info = v.Bytes()
		}
		ch <- r
	}}
	t.Cleanup(func() { trx.Close() })
	if st := <-trx.Bind(); st.Status() != smppcli.Connected {
		t.Fatalf("bind: %v", st.Error())
	}
	return func(to, text string, op uint8, info []byte) {
		t.Helper()
		if _, err := trx.Submit(&smppcli.ShortMessage{Src: "22333", Dst: to, Text: pdutext.Raw(text),
			TLVFields: pdutlv.Fields{pdutlv.TagUssdServiceOp: op, pdutlv.TagItsSessionInfo: info}}); err != nil {
			t.Fatal(err)
		}
	}, ch
}

// A merchant's request pushed as a USSD screen: the phone shows it, the lines typed
// answer it until the END screen, and then go as SMS again.
func TestPhoneAnswersAPushedUSSDScreen(t *testing.T) {
	sim, err := smscsim.Start(smscsim.Config{PhoneAPI: "127.0.0.1:0", RespTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	push, got := pushingESME(t, sim)
	const me = "254700000001"

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	pr, pw := io.Pipe()
	stdin, typing := io.Pipe()
	defer typing.Close()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-api", sim.PhoneAddr(), me}, stdin, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			if !lines.Scan() {
				t.Fatalf("output ended, want %q: %v", w, lines.Err())
			}
			if lines.Text() != w {
				t.Fatalf("got %q, want %q", lines.Text(), w)
			}
		}
	}
	delivered := func(want received) {
		t.Helper()
		select {
		case r := <-got:
			if r.text != want.text || string(r.op) != string(want.op) || string(r.info) != string(want.info) {
				t.Fatalf("the ESME got %+v, want %+v", r, want)
			}
		case <-ctx.Done():
			t.Fatalf("the ESME got nothing, want %+v", want)
		}
	}
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "phone "+me+" ready") {
		t.Fatalf("got %q, want the ready line", lines.Text())
	}

	push(me, "Mama Mboga (55501) asks KES 150.00.\n1. Pay\n2. Refuse", 0x02, []byte{0x51, 0})
	expect("< USSD 22333: Mama Mboga (55501) asks KES 150.00.", "    1. Pay", "    2. Refuse", "    (type your answer)")
	io.WriteString(typing, "1\n")
	expect("> USSD: 1")
	delivered(received{text: "1", op: []byte{0x12}, info: []byte{0x51, 2}})
	push(me, "Enter the code we sent you by SMS.", 0x02, []byte{0x51, 2})
	expect("< USSD 22333: Enter the code we sent you by SMS.", "    (type your answer)")
	io.WriteString(typing, "123456\n")
	expect("> USSD: 123456")
	delivered(received{text: "123456", op: []byte{0x12}, info: []byte{0x51, 4}})
	push(me, "Paid.", 0x11, []byte{0x51, 4})
	expect("< USSD 22333: Paid.")

	// The dialogue is over: a line is an SMS again, and a service code dials.
	io.WriteString(typing, "BAL\n")
	expect("> BAL")
	delivered(received{text: "BAL"})
	io.WriteString(typing, "*384#\n")
	expect("> USSD: *384#")
	delivered(received{text: "*384#", op: []byte{0x01}, info: []byte{1, 0}})

	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// A phone started while a pushed screen waits shows it and answers it.
func TestPhoneShowsTheScreenThatWaits(t *testing.T) {
	sim, err := smscsim.Start(smscsim.Config{PhoneAPI: "127.0.0.1:0", RespTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	push, got := pushingESME(t, sim)
	const me = "254700000001"
	push(me, "1. Pay\n2. Refuse", 0x02, []byte{0x07, 0})

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	pr, pw := io.Pipe()
	stdin, typing := io.Pipe()
	defer typing.Close()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-api", sim.PhoneAddr(), me}, stdin, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var out []string
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "phone ") {
		out = append(out, lines.Text())
	}
	want := "< USSD 22333: 1. Pay\n    2. Refuse\n< USSD 22333: 1. Pay\n    2. Refuse\n    (type your answer)"
	if strings.Join(out, "\n") != want {
		t.Fatalf("before the ready line:\n%s\nwant (the history, then the screen that waits):\n%s", strings.Join(out, "\n"), want)
	}
	io.WriteString(typing, "2\n")
	if !lines.Scan() || lines.Text() != "> USSD: 2" {
		t.Fatalf("got %q, want the answer", lines.Text())
	}
	select {
	case r := <-got:
		if r.text != "2" || string(r.op) != "\x12" || string(r.info) != "\x07\x02" {
			t.Fatalf("the ESME got %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("the answer never came")
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
