// Package payswitch is the payment engine: the payment state machine, the rules every
// payment obeys (limits, one pending payment per number, one-time codes) and the SMS
// command language of the contract.
//
// The engine knows nothing of SMPP, USSD gateways, voice gateways or HTTP. A channel turns
// what arrives into a call on Engine (HandleSMS, Request, Confirm, Cancel, ...). The engine
// decides inside one store transaction: it moves the payment through its states, asks the
// ledger to hold, post or void funds, asks otp to issue or check a code, and writes every
// message it wants sent into the durable outbox, all committed together. Channels deliver
// the outbox afterwards, so a crash can lose neither money nor a message.
//
// The engine decides, the store applies. Each command that changes a payment has a pure
// decision function on rules (decide_*.go: request, confirm, cancel, resend, expiry, code
// delivery, top-up outcome, reversal, deposit, operator top-up, account status, a
// merchant's request to pay and its end, NO, STOP and START) that takes a snapshot (the
// number's state, the payments waiting, the code check's result, balances, limits,
// counts, now, the configuration) and returns a Decision: the answer, and the ledger
// operations, payment rows, counts, authentication events, merchants' events and
// messages as data. It reads no
// database, no clock and no logger; its table tests need none. A decision that needs a
// step only another package can take (otp checks a code, the ledger holds funds) says
// so (Decision.Step), and its applier takes the step and decides again with the result.
// The applier of each command reads its snapshot (snapshotSource, the only reads on the
// decision's path) and hands the Decision to apply (apply.go), the only code that turns
// a Decision into SQL.
//
// On SQLite every write of the switch runs on the store's one writer goroutine, which
// serialises every decision. On PostgreSQL several nodes write at once, and the
// snapshot's reads take the locks that serialise the decisions about one number, key or
// account across them (pgSnapshots, snapshot_postgres.go). Either way the engine does in
// the write only what must be decided there. What can be worked out before the write goes
// ahead through one documented mechanism (ahead.go): a request's draft (the accounts its
// numbers and till name, which never change, and the payment ID, the code, its HMAC and
// the code SMS), and a confirmation's code digested for the payment waiting, which the
// write uses only for the payment it reads itself. Screens that only show (balance, mini
// statement) read from the reader pool.
//
// A number may have two payments waiting for a code at once: one of its own (PAY, SEND,
// TOPUP, BUY: pending_otp, its funds held) and a merchant's request to pay
// (RequestPayment: requested, nothing held, waiting as long as the merchant's TTL). A
// confirmation reads both with their codes in one statement (waitingQuery) and checks
// the code given against the one it is the code of, or against both when it is neither's
// (a guess costs each a try and counts once toward the number's lock). A request's right
// code checks the funds then and moves them in one transfer, or fails the request.
// Merchants' systems hear of what happens to their payments through Deps.Events, queued
// in the transaction of the change (events.go).
//
// The folder is named switch after the product; Go reserves that word, so the package is
// payswitch.
package payswitch
