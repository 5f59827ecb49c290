package payswitch

import (
	"strconv"

	"github.com/payswitch/payswitch/ledger"
)

// STOP <merchant code> by SMS: the number refuses every further request to pay from that
// merchant (request_stops; requests already waiting are not affected); START <merchant
// code> undoes it. Both are idempotent.

// maxStopsPerNumber bounds the merchants one number may refuse, so that request_stops,
// which phones fill, holds at most this many rows a number with an account.
const maxStopsPerNumber = 100

// ProblemStopLimit refuses a STOP from a number that refused maxStopsPerNumber merchants.
const ProblemStopLimit Problem = "stop_limit"

// requestStop is a number's refusal of a merchant's requests (Stopped) or its end.
type requestStop struct {
	MSISDN   string
	Merchant string // the merchant's account ID
	Stopped  bool
}

// stopSnapshot is what deciding a STOP or START looks at, as read inside the write.
type stopSnapshot struct {
	Channel  Channel
	ReplyTo  string // where an SMS answer goes
	Number   string // the number in international form; "" when it is not one
	Code     string // the merchant code as given
	Stop     bool   // STOP; false: START
	Payer    *ledger.Account
	Merchant *ledger.Account
	Stopped  bool // the number refuses the merchant's requests now
	Stops    int  // how many merchants' requests the number refuses
}

// stopRequests decides a STOP or START: the number's refusal recorded or ended, or
// nothing to change (it is already so), answered either way; a number without an
// account, an unknown merchant and a STOP past the cap are refused.
func (r *rules) stopRequests(s stopSnapshot) Decision {
	refused := func(problem Problem, vars map[string]string) Decision {
		return r.replyIfSMS(Decision{Outcome: r.refuse(problem, nil, vars)}, s.Channel, s.ReplyTo)
	}
	switch m := s.Merchant; {
	case s.Payer == nil:
		return refused(ProblemNoAccount, nil)
	case m == nil || m.Type != ledger.Merchant:
		return refused(ProblemUnknownMerchant, map[string]string{"code": s.Code})
	}
	m := s.Merchant
	vars := map[string]string{"payee": m.Name + " (" + m.Code + ")", "code": m.Code,
		"count": strconv.Itoa(maxStopsPerNumber)}
	key := "started"
	var d Decision
	switch {
	case s.Stop && !s.Stopped && s.Stops >= maxStopsPerNumber:
		return refused(ProblemStopLimit, vars)
	case s.Stop:
		key = "stopped"
		if !s.Stopped {
			d.Stop = &requestStop{MSISDN: s.Number, Merchant: m.ID, Stopped: true}
		}
	case s.Stopped:
		d.Stop = &requestStop{MSISDN: s.Number, Merchant: m.ID}
	}
	d.Outcome = Outcome{Text: r.texts.Render(key, vars)}
	if s.Channel == ChannelSMS {
		d.Messages = r.sms(s.ReplyTo, "reply", "", d.Outcome.Text, false)
	}
	return d
}
