// Package smpp connects payswitch to carrier SMSCs as an ESME (External Short Message
// Entity) over SMPP 3.4: it encodes and decodes short message text (codec.go), keeps
// bound links that receive mobile-originated messages and delivery receipts and submit
// mobile-terminated messages (link.go), runs the switch's own SMPP server for carriers
// and aggregators that bind to us (gateway.go, on package smpp/server; the delivery
// receipts their submit_sm ask for in gateway_receipt.go), and delivers the
// durable outbox over both (sender.go): by an MSISDN's pin to the gateway account it
// wrote through, else by longest prefix, with a failover link while a link is down. A
// merchant's request to pay is also pushed to the phone as network-initiated USSD over
// the carrier links with ussd_push (push.go), its session opened in the USSD menus.
//
// Delivery is at least once. SMPP 3.4 cannot say whether a submit_sm whose response was
// lost was accepted, so such a message is sent again; every attempt carries the same
// user_message_reference (and concatenation reference), so a second copy is
// recognisable, and a response that comes late (within 20 s of the timeout) still
// counts. See Sender.
//
// The SMPP session is implemented here on go-smpp's pdu package rather than with its
// Transmitter/Transceiver/Receiver types, because those cannot keep our rule "persist
// before you acknowledge": see the comment on Link.
package smpp

import "errors"

// Errors of the package. Callers use errors.Is; a refusal by the SMSC is a *StatusError.
var (
	// ErrBadUDH is returned by Decode for a user data header whose lengths do not add up.
	ErrBadUDH = errors.New("smpp: malformed user data header")
	// ErrOddUCS2 is returned by Decode for UCS-2 text of an odd number of octets.
	ErrOddUCS2 = errors.New("smpp: odd length UCS-2 text")
	// ErrUnsupportedCoding is returned by Decode for a data_coding it cannot read.
	ErrUnsupportedCoding = errors.New("smpp: unsupported data coding")

	// ErrNotBound is returned by Submit while the link is not bound to its SMSC.
	ErrNotBound = errors.New("smpp: link not bound")
	// ErrTimeout is returned when the SMSC does not answer within the response timeout;
	// the message may or may not have been accepted.
	ErrTimeout = errors.New("smpp: response timeout")
	// ErrConnLost is returned when the connection ends while a request waits.
	ErrConnLost = errors.New("smpp: connection lost")
	// ErrUnbound ends a session that the SMSC unbound.
	ErrUnbound = errors.New("smpp: unbound by the SMSC")
	// ErrClosed ends a session that the link closed.
	ErrClosed = errors.New("smpp: link closed")
	// ErrBadAddress is returned by Submit for an empty or malformed destination; it is
	// permanent.
	ErrBadAddress = errors.New("smpp: bad destination address")
	// ErrNoRoute is the failure of an outbox message whose recipient no link serves.
	ErrNoRoute = errors.New("smpp: no link serves the recipient")
	// ErrBadMeta is the failure of an outbox message whose USSD meta cannot be read.
	ErrBadMeta = errors.New("smpp: bad message meta")
	// ErrPushExpired is the failure of a request push (outbox.PurposeRequestPush)
	// that could not go out within PushMaxAge of being queued: the screen would come
	// too late.
	ErrPushExpired = errors.New("smpp: request push too old to show")
	// ErrPushRefused is the failure of a request push whose session the USSD menus
	// would not open (see PushSessions); it is permanent.
	ErrPushRefused = errors.New("smpp: USSD menus refused the request push")

	// ErrTooManyParts refuses a part of a concatenated MO that declares more than
	// MaxConcatParts parts; it is permanent.
	ErrTooManyParts = errors.New("smpp: concatenated message of too many parts")
	// ErrReassemblyFull refuses the part of a concatenated MO that would take the
	// reassembler past one of its caps; sent again later, it may be taken.
	ErrReassemblyFull = errors.New("smpp: too many concatenated parts held")
)
