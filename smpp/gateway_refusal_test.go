package smpp_test

// Refusals of the switch's SMPP server (issue 18): what it cannot act on is answered with
// an error status, never ESME_ROK with no effect, and logged at info with the account.

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/smpp"
	"github.com/rs/zerolog"
)

// logSink collects JSON log lines written from many goroutines.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// find returns the lines whose message contains msg.
func (l *logSink) find(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if s, _ := m["message"].(string); strings.Contains(s, msg) {
			out = append(out, m)
		}
	}
	return out
}

func TestGatewayRefusals(t *testing.T) {
	db, _ := mustStore(t)
	sink := newMOSink()
	var logs logSink
	g, err := smpp.NewGateway(gatewayConfig(), db, sink, zerolog.New(&logs).Level(zerolog.InfoLevel), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	agg := mustBind(t, g.Addr(), "agg-x", "secret-x")
	ussd := func(op any) error {
		_, err := agg.trx.Submit(&smppcli.ShortMessage{Src: "254700000005", Dst: "*384#", Text: pdutext.Raw("*384#"),
			TLVFields: pdutlv.Fields{pdutlv.TagUssdServiceOp: op}})
		return err
	}

	tests := []struct {
		name   string
		submit func() error
		want   uint32
		log    string // a refusal's log line
	}{
		// The menus answer PSSR/PSSD indications and USSR confirms; any other operation
		// (here USSR request, which only the network sends) used to reach them and be
		// dropped there, answered ESME_ROK.
		{"ussd_service_op the menus cannot take", func() error { return ussd(uint8(2)) }, 0xC4, // ESME_RINVOPTPARAMVAL
			"ussd_service_op"},
		{"ussd_service_op of two octets", func() error { return ussd([]byte{1, 1}) }, 0xC2, // ESME_RINVPARLEN
			"ussd_service_op"},
		{"sender that is not a number", func() error {
			_, err := agg.submit("PAYSWITCH", shortcode, "BAL")
			return err
		}, 0x0A, "source_addr"}, // ESME_RINVSRCADR
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A flood of the same refusal logs one line, and counts the others.
			for i := 0; i < 5; i++ {
				if err := tc.submit(); uint32(statusOf(err)) != tc.want {
					t.Fatalf("submit_sm: %v, want status 0x%02X", err, tc.want)
				}
			}
			lines := logs.find(t, tc.log)
			if len(lines) != 1 || lines[0]["level"] != "info" || lines[0]["system_id"] != "agg-x" {
				t.Fatalf("log lines %v", lines)
			}
			logs.mu.Lock()
			logs.b.Reset()
			logs.mu.Unlock()
		})
	}
	select {
	case m := <-sink.mos:
		t.Fatalf("a refused submit_sm reached the handler: %+v", m)
	default:
	}
}
