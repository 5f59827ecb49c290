package payswitch

import "errors"

// The states and events of contract section 11 (stores, refunds, guaranteed payments)
// that several parts of the engine share. A partial refund leaves a payment completed
// with its Refunded amount; a refund of all that is left moves it to refunded.
const (
	StateInEscrow State = "in_escrow" // confirmed; the money waits in the escrow account
	StateDisputed State = "disputed"  // in escrow, disputed by the payer until an operator settles it
	StateRefunded State = "refunded"  // all of it went back to the payer
)

// The events of contract section 11.
const (
	EvConfirmEscrow Event = "confirm_escrow" // the right code on a guaranteed payment: posted to escrow
	EvRelease       Event = "release"        // escrow paid to the merchant (payer, timer or operator)
	EvDispute       Event = "dispute"        // the payer disputes a payment in escrow
	EvRefundEscrow  Event = "refund_escrow"  // an operator gives escrowed money back to the payer
	EvRefundWhole   Event = "refund"         // refunds gave back all of a completed payment
)

// Errors of contract section 11, each a clear 4xx or SMS.
var (
	// ErrRefundTooMuch: the refund would give back more than is left of the payment.
	ErrRefundTooMuch = errors.New("payswitch: refund exceeds what is left of the payment")
	// ErrNotRefundable: the payment is not a completed merchant payment.
	ErrNotRefundable = errors.New("payswitch: payment cannot be refunded")
	// ErrNotInEscrow: the payment is not (or no longer) held in escrow.
	ErrNotInEscrow = errors.New("payswitch: payment is not in escrow")
	// ErrStoreClosed: the till belongs to a closed store.
	ErrStoreClosed = errors.New("payswitch: store is closed")
)

// The ledger kinds of contract section 11's transfers. Settlement counts a merchant's
// takings from them: merchant_payment credits (the merchant's own, not those into escrow)
// and escrow_release credits, less reversal and refund debits.
const (
	KindRefund        = "refund"         // merchant → payer: part or all of a completed payment
	KindEscrowRelease = "escrow_release" // escrow → merchant: a guaranteed payment released
	KindEscrowRefund  = "escrow_refund"  // escrow → payer: a disputed payment given back
)
