package ledger

import (
	"errors"
	"time"
)

// Errors returned by the ledger. Each is wrapped with the detail of the case (which
// account, how much), so test with errors.Is and show Error() to people.
var (
	// ErrNotFound: no account, transfer or hold has that id or key.
	ErrNotFound = errors.New("ledger: not found")
	// ErrDuplicate: the account id, msisdn or merchant code is taken.
	ErrDuplicate = errors.New("ledger: already exists")
	// ErrInsufficientFunds: the debit account may not go below zero and its available
	// balance is less than the amount.
	ErrInsufficientFunds = errors.New("ledger: insufficient funds")
	// ErrCurrencyMismatch: the two accounts (or a system account's existing currency and
	// the one asked for) differ.
	ErrCurrencyMismatch = errors.New("ledger: currency mismatch")
	// ErrAccountInactive: a frozen or closed account can neither send nor receive; a
	// closed account stays closed.
	ErrAccountInactive = errors.New("ledger: account not active")
	// ErrIdempotencyConflict: the key was used before for a different request.
	ErrIdempotencyConflict = errors.New("ledger: idempotency key reused for a different request")
	// ErrHoldVoided: the hold was voided, so it can no longer be posted.
	ErrHoldVoided = errors.New("ledger: hold already voided")
	// ErrHoldPosted: the hold was posted, so it can no longer be voided.
	ErrHoldPosted = errors.New("ledger: hold already posted")
	// ErrInvalidAmount: the amount is not positive, or would overflow a balance.
	ErrInvalidAmount = errors.New("ledger: invalid amount")
	// ErrSameAccount: debit and credit are the same account.
	ErrSameAccount = errors.New("ledger: debit and credit are the same account")
	// ErrAlreadyReversed: the transfer was reversed before, under another key.
	ErrAlreadyReversed = errors.New("ledger: transfer already reversed")
	// ErrInvalidAccount: the account's type, currency, id, code or status change is not
	// allowed (for example a code on a wallet, or freezing a system account).
	ErrInvalidAccount = errors.New("ledger: invalid account")
	// ErrInvalidRequest: a transfer or hold lacks its key or kind, or asks for something
	// only another call may do (kind "reversal" outside Reverse, reversing a reversal).
	ErrInvalidRequest = errors.New("ledger: invalid request")
	// ErrNotEmpty: an account with a balance or pending holds cannot be closed.
	ErrNotEmpty = errors.New("ledger: account has a balance or pending holds")
)

// AccountType says what an account is for, and so whether it may go below zero.
type AccountType string

// Account types. Wallets, merchants and agents hold customers' money and never go below
// zero. System accounts are the switch's own books and may: cash is the float that funds
// deposits (it goes negative by what customers hold), fees collects charges,
// airtime_clearing (one per carrier) collects airtime sold until the carrier is paid,
// settlement collects merchants' takings until they are paid out. escrow holds the money
// of guaranteed payments (contract section 11) until it is released to the merchant or
// refunded to the payer; it is a system account that, unlike the others, never goes below
// zero: it only ever pays out what it was paid.
const (
	Wallet          AccountType = "wallet"
	Merchant        AccountType = "merchant"
	Agent           AccountType = "agent"
	Cash            AccountType = "cash"
	Fees            AccountType = "fees"
	AirtimeClearing AccountType = "airtime_clearing"
	Settlement      AccountType = "settlement"
	Escrow          AccountType = "escrow"
)

// Valid reports whether t is one of the account types.
func (t AccountType) Valid() bool {
	switch t {
	case Wallet, Merchant, Agent, Cash, Fees, AirtimeClearing, Settlement, Escrow:
		return true
	}
	return false
}

// IsSystem reports whether t is one of the switch's own accounts (cash, fees,
// airtime_clearing, settlement, escrow), which are created with SystemAccount and always
// active.
func (t AccountType) IsSystem() bool {
	switch t {
	case Cash, Fees, AirtimeClearing, Settlement, Escrow:
		return true
	}
	return false
}

// MayGoNegative reports whether an account of type t may have a posted balance below
// zero. Only system accounts may, escrow excepted; customers' money never goes below zero,
// and neither does the money escrow keeps for them.
func (t AccountType) MayGoNegative() bool { return t.IsSystem() && t != Escrow }

// Status is whether an account may move money.
type Status string

// Account statuses. Frozen is reversible; closed is final.
const (
	Active Status = "active"
	Frozen Status = "frozen"
	Closed Status = "closed"
)

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool { return s == Active || s == Frozen || s == Closed }

// Balance is an account's money in minor units. Posted is what the account holds
// (credits posted - debits posted), Held is what pending holds reserve from it, and
// Available = Posted - Held is what it may still spend.
type Balance struct {
	Posted    int64 `json:"posted"`
	Held      int64 `json:"held"`
	Available int64 `json:"available"`
}

// Account is a ledger account with its balance at the time it was read.
type Account struct {
	ID        string      `json:"id"`
	Type      AccountType `json:"type"`
	Currency  string      `json:"currency"`
	Name      string      `json:"name"`
	MSISDN    string      `json:"msisdn,omitempty"`
	Code      string      `json:"code,omitempty"`
	Status    Status      `json:"status"`
	CreatedAt time.Time   `json:"created_at"`
	Balance   Balance     `json:"balance"`
}

// NewAccount asks for a customer account (wallet, merchant or agent). ID is generated
// when empty. A merchant needs a Code; only merchants have one. MSISDN is optional for
// every type and unique when set.
type NewAccount struct {
	ID       string
	Type     AccountType
	Currency string
	Name     string
	MSISDN   string
	Code     string
}

// TransferRequest asks to move Amount from Debit to Credit at once. Key is its
// idempotency key: the same key again returns the first transfer.
type TransferRequest struct {
	Key       string
	Debit     string
	Credit    string
	Amount    int64
	PaymentID string
	Kind      string
}

// Transfer is booked money movement: one debit entry and one credit entry in the journal.
// Reverses is the id of the transfer it reverses, if it is a reversal.
//
// DebitBalanceAfter and CreditBalanceAfter are the posted balances (minor units) of the
// debit and the credit account right after this transfer: the BalanceAfter of its two
// entries. They are what the accounts held then, not now: a later transfer may have
// moved either account since. Every call that returns a transfer fills them: one that
// books it (Transfer, Post, Reverse, TransferBatch) from the balances it wrote, a repeated
// call and a read (TransferByID, TransfersOfPayment) from the entries, in the statement
// that finds the transfer. BalancesAfterKnown says they were filled; it is false on a
// Transfer the ledger did not return, and on one whose entries are missing (a damaged
// journal, which Verify reports), and then both balances are zero and mean nothing. On
// PostgreSQL a booking inside a caller's Write leaves its credit account's change for the
// transaction's end (postgres_credits.go): it returns BalancesAfterKnown false and
// CreditWaits true, with DebitBalanceAfter filled; reading the transfer again in the
// transaction (TransferByID) gives both.
// The three are left out of JSON: a transfer shown to one party must not tell it the
// other's balance.
type Transfer struct {
	ID                 string    `json:"id"`
	Key                string    `json:"key"`
	Debit              string    `json:"debit"`
	Credit             string    `json:"credit"`
	Amount             int64     `json:"amount"`
	Currency           string    `json:"currency"`
	PaymentID          string    `json:"payment_id,omitempty"`
	Kind               string    `json:"kind"`
	Reverses           string    `json:"reverses,omitempty"`
	Time               time.Time `json:"time"`
	DebitBalanceAfter  int64     `json:"-"`
	CreditBalanceAfter int64     `json:"-"`
	BalancesAfterKnown bool      `json:"-"`
	CreditWaits        bool      `json:"-"` // DebitBalanceAfter is known, CreditBalanceAfter not yet
}

// KindReversal is the kind of the transfers Reverse writes; no other call may use it.
const KindReversal = "reversal"

// HoldRequest asks to reserve Amount on Debit for a later transfer to Credit. Key is the
// hold's id and idempotency key, and becomes the key of the transfer that posting it books.
type HoldRequest struct {
	Key       string
	Debit     string
	Credit    string
	Amount    int64
	PaymentID string
	Kind      string
}

// Hold states.
const (
	HoldPending = "pending"
	HoldPosted  = "posted"
	HoldVoided  = "voided"
)

// Hold is a reservation of funds (a TigerBeetle pending transfer). TransferID is set once
// it is posted.
type Hold struct {
	Key        string    `json:"key"`
	Debit      string    `json:"debit"`
	Credit     string    `json:"credit"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	PaymentID  string    `json:"payment_id,omitempty"`
	Kind       string    `json:"kind"`
	State      string    `json:"state"`
	TransferID string    `json:"transfer_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Entry is one row of the journal: one side of a transfer. TimeText is the time exactly
// as stored and hashed; BalanceAfter is the account's posted balance after this entry.
type Entry struct {
	Seq          int64     `json:"seq"`
	Time         time.Time `json:"time"`
	TimeText     string    `json:"-"`
	TransferID   string    `json:"transfer_id"`
	PaymentID    string    `json:"payment_id"`
	AccountID    string    `json:"account_id"`
	Direction    string    `json:"direction"`
	Amount       int64     `json:"amount"`
	Currency     string    `json:"currency"`
	BalanceAfter int64     `json:"balance_after"`
	PrevHash     string    `json:"prev_hash"`
	Hash         string    `json:"hash"`
}

// Entry directions.
const (
	Debit  = "D"
	Credit = "C"
)

// Totals are the posted debits and credits of one currency; the books balance when they
// are equal.
type Totals struct {
	Debits  int64 `json:"debits"`
	Credits int64 `json:"credits"`
}

// Report is what Verify found. OK is true when Problems is empty; Problems[0] is the first
// problem found (chain problems come first, in journal order).
type Report struct {
	OK        bool              `json:"ok"`
	Accounts  int64             `json:"accounts"`
	Entries   int64             `json:"entries"`
	Transfers int64             `json:"transfers"`
	LastSeq   int64             `json:"last_seq"`
	LastHash  string            `json:"last_hash"`
	Totals    map[string]Totals `json:"totals"`
	Problems  []string          `json:"problems,omitempty"`
}
