package console

import (
	"context"
	"errors"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// Errors a Backend returns for the console to show as such.
var (
	// ErrNotFound: no payment or account has that ID, number, code or name.
	ErrNotFound = errors.New("console: not found")
	// ErrRefused: the engine refused the request (bad amount, payment not completed,
	// payee has spent the money...); the error's text says why and is shown.
	ErrRefused = errors.New("console: refused")
)

// Backend is what the console reads from and asks of the switch. serve adapts the
// engine, the ledger, the outbox and the demo SMSC to it; the console knows no SQL
// of the payment tables and no engine types, so that the engine can change under it.
type Backend interface {
	// Overview is the state of the switch now: links, outbox, database, books.
	Overview(ctx context.Context) (Overview, error)
	// Activity lists the payments created at or after since, one row per minute, state
	// and channel.
	Activity(ctx context.Context, since time.Time) ([]ActivityRow, error)
	// Find looks q up as a payment ID, a merchant code, a phone number or a name.
	Find(ctx context.Context, q string) (Found, error)
	Account(ctx context.Context, id string) (ledger.Account, error)
	// AccountPayments is a page of the payments the account's number made or received,
	// newest first, those before cursor ("" for the first page); next is "" on the last.
	AccountPayments(ctx context.Context, a ledger.Account, cursor string, limit int) (ps []Payment, next string, err error)
	// AccountEntries is a page of the account's journal entries, those with seq below
	// beforeSeq (0: from the newest).
	AccountEntries(ctx context.Context, id string, beforeSeq int64, limit int) ([]ledger.Entry, error)
	// SetAccountStatus freezes (ledger.Frozen) or reactivates (ledger.Active) a customer
	// account, recording reason and actor (the signed-in token's name) in its history
	// in the same write.
	SetAccountStatus(ctx context.Context, id string, s ledger.Status, reason, actor string) error
	// AccountChanges is the account's history of operators' changes, newest first, at
	// most limit.
	AccountChanges(ctx context.Context, id string, limit int) ([]AccountChange, error)
	// Payment is everything known about one payment.
	Payment(ctx context.Context, id string) (PaymentDetail, error)
	// Reverse reverses a completed payment, as the API's reverse does.
	Reverse(ctx context.Context, id, reason, reference string) error
	// SettleEscrow settles a guaranteed payment in escrow or disputed, as the API's
	// POST /api/v1/payments/{id}/escrow does: action "release" pays the merchant,
	// "refund" gives the money back to the payer (contract section 11).
	SettleEscrow(ctx context.Context, id, action, reason, actor string) error
	// Refund gives part or all of a completed merchant payment back to its payer, as
	// the API's refund does with an operator's token; created is false when the
	// reference was used before for the same refund (nothing more moved).
	Refund(ctx context.Context, r RefundRequest) (created bool, err error)
	// SetAccountTier changes a wallet's KYC tier (contract section 14), recording reason
	// and actor in its history. The id number is handed to the engine, which keeps only
	// its keyed digest; it is never shown or logged.
	SetAccountTier(ctx context.Context, c TierChange) error
	// Deposit credits cash to an account, as the API's deposits do, and returns the
	// payment's ID.
	Deposit(ctx context.Context, account string, amount int64, reference string) (string, error)
	// Export writes the auditor export of the whole ledger into dir, which exists and
	// is empty.
	Export(ctx context.Context, dir string) error
	// SettlementRuns lists the settled business days, newest first, at most limit.
	SettlementRuns(ctx context.Context, limit int) ([]SettlementRun, error)
	// StoreSales is a merchant's stores (and "main", its own code) with their takings of
	// the business day that contains at, for its account page (contract section 11).
	StoreSales(ctx context.Context, merchantID string, at time.Time) ([]StoreSales, error)
	// Currency is the switch's currency; amounts are in its minor units (two decimals).
	Currency() string
	// Phone is the phone in the browser, nil when the demo SMSC is off.
	Phone() Phone
}

// Phone plays a handset on the demo SMSC, server-side: the browser never reaches the
// SMSC's phone API.
type Phone interface {
	// SendSMS sends text from the number to the switch's shortcode through the SMSC.
	SendSMS(ctx context.Context, from, text string) error
	// Thread is what the number sent through SendSMS and what the SMSC delivered to it,
	// oldest first.
	Thread(number string) []PhoneMessage
	// USSD is one step of a USSD dialogue of the number: begin dials the service code
	// (with input, if any, as typed after it); otherwise input answers the last screen.
	USSD(ctx context.Context, session, number, input string, begin bool) (screen string, end bool, err error)
	// PushedScreen is the USSD screen the network last put on the number's display
	// through the SMSC, if any: a merchant's request to pay pushed over a link with
	// ussd_push, and the screens that answer the phone's replies to it.
	PushedScreen(number string) (PushedScreen, bool)
	// AnswerPushed keys input into the number's pushed screen, which must wait for an
	// answer (ErrNotFound when none does: it was answered, ended or timed out). The
	// network's next screen comes later, as the next PushedScreen.
	AnswerPushed(ctx context.Context, number, input string) error
	// ServiceCode is the USSD code the phone dials.
	ServiceCode() string
	// Numbers are numbers the SMSC has seen, to pick from.
	Numbers() []string
}

// PushedScreen is a USSD screen the network put on the phone's display.
type PushedScreen struct {
	From string // who sent it: the service code or the shortcode
	Text string
	Open bool      // it waits for the phone's answer
	Time time.Time // when it reached the phone
}

// PhoneMessage is one SMS on the browser phone's screen.
type PhoneMessage struct {
	Time     time.Time
	Incoming bool // delivered to the phone; false: sent by it
	Text     string
}

// Overview is the overview page's data.
type Overview struct {
	Links    []Link
	Outbox   map[string]int64 // unsent messages by state: queued, sending, failed
	Database Database
	Replicas []Replica // none when no replica is configured
	Trial    map[string]ledger.Totals
	HeadSeq  int64
	HeadHash string
}

// Link is one SMPP link (or account of the switch's own SMPP server).
type Link struct {
	Name, State                 string
	Sessions, InFlight, Window  int
	Submitted, Failed, Received uint64
	Throttled                   uint64
	Server                      bool    // an account of our SMPP server, not a carrier link
	SubmitRate                  float64 // submit_sm per second since the last look; set by the console
}

// Database is the database's state.
type Database struct {
	Writable        bool
	Fault           string
	Path            string
	Size, WALSize   int64
	CheckpointEvery time.Duration // how often the store's checkpointer copies the WAL back
	// LastCheckpoint is when the checkpointer last succeeded (zero: not yet), and the
	// WAL's frames and those of them copied back then.
	LastCheckpoint             time.Time
	WALFrames, CheckpointedWAL int64
}

// Replica is one of the database's continuous copies (Litestream). Lag bounds what
// losing the disk now would lose; Error is the last failure to ship, while it lasts.
type Replica struct {
	Name  string
	OK    bool
	Lag   time.Duration
	Error string
}

// SettlementRun is what `payswitch settle` moved for one business day and currency: a
// transfer per merchant into the settlement account.
type SettlementRun struct {
	Date, Currency string
	Merchants      int
	Total          int64
}

// ActivityRow counts the payments of one minute in one state and channel.
type ActivityRow struct {
	Minute         time.Time
	State, Channel string
	Count          int
}

// StoreSales is one of a merchant's stores, or its own code (ID "main", no till), with
// the day's takings.
type StoreSales struct {
	ID, Name, Till, Phone, Status string
	Payments, Gross, Refunds, Net int64
}

// Found is what a search found: exactly one of Payment and Account set, or Accounts (a
// name matched several, or none).
type Found struct {
	Payment  string
	Account  string
	Accounts []ledger.Account
}

// Payment is a payment as the console shows it.
type Payment struct {
	ID, Type, Channel, State          string
	PayerAccount, PayeeAccount        string
	PayerMSISDN, PayeeName, PayeeCode string
	PayeeMSISDN, Target               string
	Reference, Reason, ReversalRef    string
	Amount                            int64
	Currency                          string
	CreatedAt, UpdatedAt, ExpiresAt   time.Time

	// Contract sections 11 and 14: the store whose till was paid, what refunds gave back
	// so far, a guaranteed payment's escrow and when it is released by itself, the
	// payer's fee, and the risk grade with the rules that fired (comma-separated).
	Store           string
	Refunded, Fee   int64
	Escrow          bool
	ReleaseAt       time.Time
	Risk, RiskRules string
}

// Refund is one refund of a payment (contract section 11).
type Refund struct {
	ID, Reference, Reason, Actor, TransferID string
	Amount                                   int64
	Currency                                 string
	CreatedAt                                time.Time
}

// RefundRequest is an operator's refund of a completed merchant payment.
type RefundRequest struct {
	PaymentID, Reference, Reason, Actor string
	Amount                              int64 // minor units
}

// TierChange is an operator's change of a wallet's KYC tier. IDNumber is required for
// tier 2 and must never be shown, echoed or logged.
type TierChange struct {
	Account       string
	Tier          int
	IDNumber      string
	Reason, Actor string
}

// PaymentDetail is one payment with its whole history.
type PaymentDetail struct {
	Payment
	Timeline  []StateChange
	Transfers []ledger.Transfer
	Accounts  map[string]ledger.Account // the transfers' accounts, by ID
	Auth      []AuthEvent
	Messages  []Message
	Refunds   []Refund // oldest first
}

// StateChange is one step of a payment's state timeline.
type StateChange struct {
	Time                    time.Time
	Event, From, To, Detail string
}

// AuthEvent is one step of a payment's authentication: never a code.
type AuthEvent struct {
	Time                           time.Time
	Event, Channel, MSISDN, Detail string // MSISDN is stored masked
}

// Message is an SMS or call sent for a payment, with its delivery receipts. Text is
// empty for a code message or a call: those are sealed and never shown.
type Message struct {
	ID                       int64
	Kind, To, Purpose, State string
	Text                     string
	Sealed                   bool
	Link, LastError          string
	Attempts                 int
	CreatedAt                time.Time
	Receipts                 []string // the status of each part's receipt, in order
}

// AccountChange is one entry of an account's history: an operator changed Field from
// Old to New at At, for Reason.
type AccountChange struct {
	At       time.Time
	Actor    string
	Field    string
	Old, New string
	Reason   string
}
