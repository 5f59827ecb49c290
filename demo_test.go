package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/tools/smscsim"
)

// loopbackPort is a free port on 127.0.0.1: the demo SMSC's address must be known
// before it starts, since the link names it.
func loopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDemo starts a switch shaped like the shipped config.yaml: its link to the built-in
// demo SMSC has no password (SMSC_A_PASSWORD unset), plus the links in moreLinks.
func startDemo(t *testing.T, moreLinks string, log *logBuffer) (*app, *config.Config) {
	t.Helper()
	demo := loopbackPort(t)
	yaml := fmt.Sprintf(`
database: {path: %q}
http: {listen: "127.0.0.1:0"}
currency: KES
shortcode: "22333"
smpp:
  links:
    - {name: carrier-a, address: %q, system_id: payswitch, password: "${SMSC_A_PASSWORD}"}
%s
  demo_smsc: {listen: %q, phone_api: "127.0.0.1:0"}
otp: {secret: %s}
`, filepath.Join(t.TempDir(), "payswitch.db"), demo, moreLinks, demo, testOTPSecret)
	cfg, err := config.Parse([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a, err := startApp(context.Background(), cfg, zerolog.New(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, cfg
}

// A fresh `serve` with the shipped config: the demo link binds with a password made for
// the run (the sim refuses an empty one), and a phone speaks through the phone API as
// tools/phone does.
func TestDemoSMSCWithoutConfiguredPassword(t *testing.T) {
	var log logBuffer
	a, cfg := startDemo(t, "", &log)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.sim.WaitBound(ctx); err != nil {
		t.Fatalf("demo link did not bind: %v\n%s", err, log.String())
	}
	if pw := cfg.SMPP.Links[0].Password; len(pw) != 8 {
		t.Errorf("demo link password %d characters, want a generated one of 8", len(pw))
	} else if strings.Contains(log.String(), pw) {
		t.Error("the generated password is in the log")
	}
	if log.count("DEMO SMSC RUNS BESIDE") != 0 {
		t.Errorf("warned about carrier links there are none of:\n%s", log.String())
	}

	base := "http://" + a.sim.PhoneAddr()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/mt?msisdn="+alice, nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	post := func(contentType string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/mo",
			strings.NewReader(`{"from":"`+alice+`","to":"22333","text":"BAL"}`))
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("text/plain"); code != http.StatusUnsupportedMediaType {
		t.Errorf("MO as text/plain: %d, want 415", code)
	}
	if code := post("application/json"); code != http.StatusAccepted {
		t.Fatalf("MO as application/json: %d, want 202", code)
	}
	sc := bufio.NewScanner(stream.Body)
	if !sc.Scan() {
		t.Fatalf("no reply to the phone: %v", sc.Err())
	}
	var mt smscsim.MT
	if err := json.Unmarshal(sc.Bytes(), &mt); err != nil || mt.From != "22333" || mt.Text == "" {
		t.Fatalf("reply %s (%v), want an SMS from 22333", sc.Bytes(), err)
	}
}

// The demo SMSC beside a real carrier link: serve says so at start.
func TestDemoSMSCBesideACarrierWarns(t *testing.T) {
	carrier, err := smscsim.Start(smscsim.Config{Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { carrier.Close() })
	var log logBuffer
	startDemo(t, fmt.Sprintf("    - {name: carrier-b, address: %q, system_id: payswitch, password: pw}", carrier.Addr()), &log)
	if n := log.count(`"level":"warn"`, "THE DEMO SMSC RUNS BESIDE REAL CARRIER LINKS (carrier-b)"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, log.String())
	}
}
