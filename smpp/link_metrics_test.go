package smpp

import (
	"context"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Each deliver_sm's time from arrival to answer is observed, by kind.
func TestDeliverAnswersTimed(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := newTestSMSC(t, "pw")
	l := NewLink(LinkConfig{Name: "a", Address: srv.addr(), Password: "pw"}, newRecorder(), zerolog.Nop(), reg)
	l.Start(context.Background())
	t.Cleanup(func() { l.Close() })
	waitState(t, l, StateBound)
	for _, p := range []pdu.Body{
		deliverSM("254700000001", "22333", 0, 0, []byte("BAL"), nil),
		deliverSM("254700000001", "22333", 0, 0x04, []byte("id:77 stat:DELIVRD err:000"), nil),
		deliverSM("254700000001", "22333", 0, 0x04, []byte("id:78 stat:DELIVRD err:000"), nil),
	} {
		if st := srv.mustDeliver(t, p); st != StatusOK {
			t.Fatalf("answered 0x%x", st)
		}
	}
	counts := map[string]uint64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "payswitch_smpp_deliver_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "kind" {
					counts[lp.GetValue()] = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if counts["mo"] != 1 || counts["receipt"] != 2 {
		t.Fatalf("answers timed: %v", counts)
	}
}
