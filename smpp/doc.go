// Package smpp connects payswitch to carrier SMSCs as an ESME (External Short Message
// Entity) over SMPP 3.4: it encodes and decodes short message text (codec.go), keeps
// bound links that receive mobile-originated messages and delivery receipts and submit
// mobile-terminated messages (link.go), and delivers the durable outbox over those links
// (sender.go).
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
)
