// Package ivr is the voice channel: payments by phone call with DTMF keys, and outbound
// calls that tell merchants of payments and ask payers for their code.
//
// The voice gateway posts each step of a call to POST /ivr (form fields sessionId,
// isActive, direction, callerNumber, destinationNumber, dtmfDigits) and reads the answer,
// an XML Response of Say, GetDigits and Reject (see Response). A call's place in its
// script lives in memory, keyed by the gateway's sessionId, until the gateway reports
// isActive=0 or the call has been idle for the session timeout (on PostgreSQL, with
// Config.DB, in the database instead, so that any node answers any callback:
// dbsessions.go). The payment itself lives
// in the engine: a call only remembers the ID of the payment it started, so a call that
// ends early leaves a payment that the code sent by SMS still confirms until it expires.
//
// Inbound script (the caller's number, normalised, is the payer; a number with no
// account hears so at once and is offered only the lost-phone lock, 9; anything else
// ends the call):
//
//	menu:      1 pay a merchant, 2 send money, 3 balance (spoken; the call ends),
//	           9 lock a lost phone's wallet: its number, then its owner's id number; the
//	           engine's neutral answer is spoken and the call ends (lostphone.go)
//	1:         merchant code, checked at once   -> amount
//	2:         recipient's number               -> amount
//	amount:    whole units (150 is 150.00); the engine holds the funds and sends the code
//	           by SMS                            -> code
//	code:      the code: the result is spoken and the call ends. A wrong code is asked
//	           again while the engine leaves tries.
//
// A wrong or missing key says why and repeats the prompt, at most twice; the next one
// ends the call politely and nothing moves.
//
// Outbound calls: the engine queues an outbox message of kind "call" (purpose
// "merchant_notice" when a merchant payment completes; "payer_confirm" for a payer asked
// to confirm by voice). The Caller asks the gateway to place it; the gateway's callbacks
// for it (direction=Outbound, destinationNumber the number called) are matched to the
// message only by the call ID the gateway answered with (see matchCall); any other
// outbound callback gets <Reject/>. They get the script of its purpose:
//
//	merchant_notice: the payment's amount, masked payer and ID; 1 hears it again
//	payer_confirm:   the pending payment, then its code as in the inbound script; or,
//	                 when the code SMS could not be delivered, the payment and its
//	                 amount, which the payer keys in whole units (see fallback)
//
// A code is never spoken. Calls in memory are bounded per number and in all (see
// maxPerNumber, maxSessions): past either bound the oldest call is forgotten.
//
// Speech: amounts in words of the currency ("one hundred and fifty shillings"), numbers
// and payment IDs one symbol at a time ("5 5 5 0 1"), a payer's number masked as "a number
// starting 2 5 4 7 and ending 0 0 1". Every text can be overridden (Config.Texts). Codes
// and keyed digits are never logged.
package ivr
