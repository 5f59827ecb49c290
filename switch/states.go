package payswitch

import (
	"context"
	"fmt"

	"github.com/looplab/fsm"
)

// State is where a payment is in its life.
type State string

// The payment states of the contract.
const (
	StatePendingOTP   State = "pending_otp"
	StateTopupPending State = "topup_pending"
	StateCompleted    State = "completed"
	StateFailed       State = "failed"
	StateExpired      State = "expired"
	StateCancelled    State = "cancelled"
	StateReversed     State = "reversed"
)

// Event is what happens to a payment; each is allowed only from certain states.
type Event string

// The events that move a payment.
const (
	EvConfirm        Event = "confirm"         // the right code: funds posted
	EvStartTopup     Event = "start_topup"     // right code on airtime: posted to clearing, carrier called
	EvTopupSucceeded Event = "topup_succeeded" // the carrier credited the airtime
	EvTopupFailed    Event = "topup_failed"    // the carrier definitely refused: money returned
	EvFail           Event = "fail"            // too many wrong codes
	EvExpire         Event = "expire"          // the code's time ran out
	EvCancel         Event = "cancel"          // the payer cancelled
	EvReverse        Event = "reverse"         // an operator reversed a completed payment
	EvDecline        Event = "decline"         // the payer refused a merchant's request to pay
)

// transitions is the whole state machine; looplab/fsm enforces it. A merchant's request
// to pay (requested) waits for its code like a payment of the payer's own (pending_otp),
// with nothing held: the right code completes it (or starts its top-up) with a direct
// transfer, and it can fail, expire or be declined, but not be cancelled.
var transitions = fsm.Events{
	{Name: string(EvConfirm), Src: []string{string(StatePendingOTP), string(StateRequested)}, Dst: string(StateCompleted)},
	{Name: string(EvStartTopup), Src: []string{string(StatePendingOTP), string(StateRequested)}, Dst: string(StateTopupPending)},
	{Name: string(EvTopupSucceeded), Src: []string{string(StateTopupPending)}, Dst: string(StateCompleted)},
	{Name: string(EvTopupFailed), Src: []string{string(StateTopupPending)}, Dst: string(StateReversed)},
	{Name: string(EvFail), Src: []string{string(StatePendingOTP), string(StateRequested)}, Dst: string(StateFailed)},
	{Name: string(EvExpire), Src: []string{string(StatePendingOTP), string(StateRequested)}, Dst: string(StateExpired)},
	{Name: string(EvCancel), Src: []string{string(StatePendingOTP)}, Dst: string(StateCancelled)},
	{Name: string(EvReverse), Src: []string{string(StateCompleted)}, Dst: string(StateReversed)},
	{Name: string(EvDecline), Src: []string{string(StateRequested)}, Dst: string(StateDeclined)},
	// Contract section 11 (business_types.go).
	{Name: string(EvConfirmEscrow), Src: []string{string(StatePendingOTP), string(StateRequested)}, Dst: string(StateInEscrow)},
	{Name: string(EvRelease), Src: []string{string(StateInEscrow), string(StateDisputed)}, Dst: string(StateCompleted)},
	{Name: string(EvDispute), Src: []string{string(StateInEscrow)}, Dst: string(StateDisputed)},
	{Name: string(EvRefundEscrow), Src: []string{string(StateDisputed), string(StateInEscrow)}, Dst: string(StateRefunded)},
	{Name: string(EvRefundWhole), Src: []string{string(StateCompleted)}, Dst: string(StateRefunded)},
}

// Next returns the state that ev leads to from s, or an error when ev is not allowed there.
// The answers come from moves, which looplab/fsm computed once; an event it does not
// allow goes to an FSM of its own, for the library's own error.
func Next(s State, ev Event) (State, error) {
	if to, ok := moves[transition{s, ev}]; ok {
		return to, nil
	}
	f := fsm.NewFSM(string(s), transitions, nil)
	if err := f.Event(context.Background(), string(ev)); err != nil {
		return s, fmt.Errorf("payswitch: %s from %s: %w", ev, s, err)
	}
	return State(f.Current()), nil
}

// transition is an event in a state.
type transition struct {
	from State
	ev   Event
}

// moves is every transition the machine allows and the state it leads to, as looplab/fsm
// makes it. Next runs inside the store writer's operations, where a fresh FSM for each
// transition (its maps built anew every time) showed in the writer's profile.
var moves = allowedMoves()

func allowedMoves() map[transition]State {
	m := make(map[transition]State)
	for _, t := range transitions {
		for _, src := range t.Src {
			f := fsm.NewFSM(src, transitions, nil)
			if err := f.Event(context.Background(), t.Name); err == nil {
				m[transition{State(src), Event(t.Name)}] = State(f.Current())
			}
		}
	}
	return m
}

// Final reports whether nothing can happen to a payment in state s any more.
func (s State) Final() bool {
	switch s {
	case StateFailed, StateExpired, StateCancelled, StateReversed, StateDeclined, StateRefunded:
		return true
	}
	return false
}
