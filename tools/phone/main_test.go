package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/tools/smscsim"
)

const waitLimit = 10 * time.Second

// echoESME binds to sim and answers every MO with "you said: <text>", as the
// switch would answer with a reply.
func echoESME(t *testing.T, sim *smscsim.Sim) {
	t.Helper()
	mo := make(chan pdu.Body, 16)
	trx := &smppcli.Transceiver{Addr: sim.Addr(), User: "payswitch", Passwd: "x", Handler: func(p pdu.Body) {
		if p.Header().ID == pdu.DeliverSMID {
			mo <- p
		}
	}}
	t.Cleanup(func() { trx.Close() })
	if st := <-trx.Bind(); st.Status() != smppcli.Connected {
		t.Fatalf("bind: %v", st.Error())
	}
	go func() {
		for p := range mo {
			f := p.Fields()
			dc := f[pdufield.DataCoding].(*pdufield.Fixed).Data
			part, err := smpp.Decode(dc, 0, f[pdufield.ShortMessage].Bytes(), nil)
			if err != nil {
				t.Errorf("decode MO: %v", err)
				return
			}
			trx.Submit(&smppcli.ShortMessage{Src: "22333", Dst: f[pdufield.SourceAddr].String(), Text: pdutext.Raw("you said: " + part.Text)})
		}
	}()
}

func TestPhoneSendsLinesAndPrintsReplies(t *testing.T) {
	sim, err := smscsim.Start(smscsim.Config{PhoneAPI: "127.0.0.1:0", RespTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	echoESME(t, sim)
	// A message for another number must not show.
	other := "254700000002"

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-api", sim.PhoneAddr(), "254700000001"}, strings.NewReader("BAL\n\n  MINI  \n"), pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	want := map[string]bool{
		"> BAL": true, "> MINI": true,
		"< 22333: you said: BAL": true, "< 22333: you said: MINI": true,
	}
	sentOther := false
	for len(want) > 0 && lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "phone ") && !sentOther {
			// Ready: the stream is open, so an MT to another phone would
			// show now if the filter were wrong.
			sim.SendMO(ctx, other, "22333", "HELP")
			sentOther = true
			continue
		}
		if strings.Contains(line, "HELP") {
			t.Fatalf("printed another phone's message: %q", line)
		}
		if !want[line] {
			t.Fatalf("unexpected line %q", line)
		}
		delete(want, line)
	}
	if len(want) > 0 {
		t.Fatalf("missing lines %v (scan error %v)", want, lines.Err())
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestPhoneExplainsUnreachableAPI(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	var out strings.Builder
	err = run(context.Background(), []string{"-api", addr, "254700000001"}, strings.NewReader(""), &out)
	if err == nil || !strings.Contains(err.Error(), "is payswitch serve running with smpp.demo_smsc.phone_api?") {
		t.Fatalf("err %v", err)
	}
}

func TestPhoneNeedsOneNumber(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), nil, strings.NewReader(""), &out); err == nil || !strings.Contains(err.Error(), "MSISDN") {
		t.Fatalf("err %v", err)
	}
}
