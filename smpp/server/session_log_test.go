package server

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/rs/zerolog"
)

// syncBuffer is a log sink that the session goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines whose message contains msg.
func (s *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if s, _ := m["message"].(string); strings.Contains(s, msg) {
			out = append(out, m)
		}
	}
	return out
}

// The end of a bound session is logged at info as its bind is: the account, the remote
// address, how long it was bound, and whether the peer unbound or the connection
// dropped (issue 18: an aggregator's connection went away without a trace).
func TestSessionEndLoggedAtInfo(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		end        func(rc *rawConn)
	}{
		{"dropped", "smpp server: connection dropped", func(rc *rawConn) { rc.c.Close() }},
		{"unbind", "smpp server: unbound", func(rc *rawConn) {
			rc.send(pdu.NewUnbind(), 2)
			rc.expect(pdu.UnbindRespID, 0, 2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			unbound := make(chan *Session, 1)
			srv := &Server{Handler: &fakeHandler{unbound: func(s *Session) { unbound <- s }},
				Log: zerolog.New(&logs).Level(zerolog.InfoLevel)}
			addr := mustServe(t, srv)
			rc := dialRaw(t, addr)
			rc.bind("esme", "secret")
			local := rc.c.LocalAddr().String()
			tc.end(rc)
			<-unbound
			got := logs.lines(t, tc.want)
			if len(got) != 1 {
				t.Fatalf("%d lines %q in %s", len(got), tc.want, logs.b.String())
			}
			l := got[0]
			if l["level"] != "info" || l["system_id"] != "esme" || l["remote"] != local || l["bind"] != BindTransceiver {
				t.Fatalf("log line %v", l)
			}
			if _, ok := l["bound_for"]; !ok {
				t.Fatalf("log line without bound_for: %v", l)
			}
		})
	}
}

// replier is a fakeHandler that sends a deliver_sm once each response is written.
type replier struct {
	fakeHandler
	sent chan error
}

func (r *replier) Replied(s *Session, resp pdu.Body) {
	go func() { // Send waits for the response that this goroutine's reader reads
		_, err := s.Send(context.Background(), pdu.NewDeliverSM())
		r.sent <- err
	}()
}

// Replied comes after the response is written: what it sends follows the response on
// the wire, as a delivery receipt must follow the submit_sm_resp giving its id.
func TestRepliedAfterTheResponse(t *testing.T) {
	r := &replier{sent: make(chan error, 1)}
	addr := mustServe(t, &Server{Handler: r})
	rc := dialRaw(t, addr)
	rc.bind("esme", "secret")
	rc.send(newSubmit("254700000001", "22333", "BAL"), 2)
	rc.expect(pdu.SubmitSMRespID, 0, 2)
	p := rc.read()
	if p.Header().ID != pdu.DeliverSMID {
		t.Fatalf("got %s, want the deliver_sm sent by Replied", p.Header().ID)
	}
	resp := pdu.NewDeliverSMResp()
	rc.send(resp, p.Header().Seq)
	if err := <-r.sent; err != nil {
		t.Fatal(err)
	}
}
