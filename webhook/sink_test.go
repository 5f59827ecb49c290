package webhook_test

import (
	"slices"
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/webhook"
)

// Hooks is the engine's EventSink; the package itself does not import the engine.
var _ payswitch.EventSink = (*webhook.Hooks)(nil)

// Every event the engine queues is a type Enqueue accepts: an unknown type fails the
// engine's write, so a missing one here would refuse the change it reports.
func TestEngineEventTypesAreAccepted(t *testing.T) {
	for _, ev := range []string{payswitch.EventPaymentCompleted, payswitch.EventPaymentReversed,
		payswitch.EventRequestDeclined, payswitch.EventRequestExpired, payswitch.EventRequestFailed} {
		if !slices.Contains(webhook.Types, ev) {
			t.Errorf("the engine queues %q, which webhook.Enqueue refuses", ev)
		}
	}
}
