package payswitch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/payswitch/payswitch/ledger"
)

// The KYC tiers of contract section 14: what deciding a change of a wallet's tier looks
// at, the change itself, and the limits a tier puts on payments and balances.

// AccountTierChange is an operator's change of a wallet's KYC tier.
type AccountTierChange struct {
	Account string
	Tier    int
	// IDNumber is the holder's national id number, required for TierFull (5 to 20
	// digits, ValidIDNumber) and refused with any other tier. Only its keyed digest is
	// kept; the number is neither stored nor logged nor returned.
	IDNumber string
	// ForgetIDNumber, when lowering a tier, forgets the id number on file (its
	// digest); without it a lowered wallet keeps it, so that a LOCK still works and a
	// later raise need not ask the holder again.
	ForgetIDNumber bool
	Reason         string // why, for the account's history; required
	Actor          string // who: the name of the operator's token; required
}

// walletKYC is a wallet's row of wallet_kyc as the write reads it: no row is
// DefaultTier with no id number on file.
type walletKYC struct {
	Tier   int
	Digest string // the keyed digest of its id number, "" for none
}

// tierSnapshot is what deciding an operator's change of a tier looks at, as read inside
// the write.
type tierSnapshot struct {
	Account *ledger.Account // nil: no such account
	KYC     walletKYC
}

// tierChange is what a decided change of a tier writes: the wallet's row of wallet_kyc
// and the rows of its history (the tier's, the id number's; never the number).
type tierChange struct {
	Account string
	Tier    int
	Digest  string
	History []accountChange
}

// The words the history writes for an id number, which it never shows.
const (
	idNone   = "none"
	idOnFile = "on file"
)

// errNoIDKey: a tier 2 asked of a switch that was given no key for id numbers' digests.
var errNoIDKey = errors.New("payswitch: no key for id numbers (Config.IDNumberKey)")

// accountTier decides an operator's change of a wallet's tier: the new row of
// wallet_kyc and the rows of its history, written together. Only wallets have tiers.
// TierFull needs an id number, kept as its digest; lowering a tier keeps the digest
// unless the change forgets it. The same tier again is a conflict, except TierFull
// with an id number, which replaces the one on file.
func (r *rules) accountTier(s tierSnapshot, c AccountTierChange) Decision {
	reason, reasonErr := checkReason(c.Reason, true)
	actor := strings.TrimSpace(c.Actor)
	switch {
	case c.Tier < TierUnregistered || c.Tier > TierFull:
		return Decision{Err: fmt.Errorf("%w: tier: %d: %w", ErrInvalid, c.Tier, ErrBadTier)}
	case c.Tier == TierFull && c.IDNumber == "":
		return Decision{Err: fmt.Errorf("%w: id_number: tier 2 (full KYC) needs the holder's id number", ErrInvalid)}
	case c.Tier != TierFull && c.IDNumber != "":
		return Decision{Err: fmt.Errorf("%w: id_number: recorded only with tier 2 (full KYC)", ErrInvalid)}
	case c.IDNumber != "" && !ValidIDNumber(c.IDNumber):
		// The number itself is not repeated: an answer may end up in a log.
		return Decision{Err: fmt.Errorf("%w: id_number: %w, without spaces or letters", ErrInvalid, ErrBadIDNumber)}
	case c.ForgetIDNumber && c.Tier == TierFull:
		return Decision{Err: fmt.Errorf("%w: forget_id_number: tier 2 keeps an id number", ErrInvalid)}
	case reasonErr != nil:
		return Decision{Err: reasonErr}
	case actor == "":
		return Decision{Err: fmt.Errorf("%w: actor: who makes the change is required", ErrInvalid)}
	}
	a := s.Account
	switch {
	case a == nil:
		return Decision{Err: fmt.Errorf("%w: account %q", ErrNotFound, c.Account)}
	case a.Type != ledger.Wallet:
		return Decision{Err: fmt.Errorf("%w: %s is a %s account: only wallets have tiers", ErrInvalid, a.ID, a.Type)}
	case a.Status == ledger.Closed:
		return Decision{Err: fmt.Errorf("%w: %s is closed for good", ErrConflict, a.ID)}
	case s.KYC.Tier == c.Tier && c.IDNumber == "" && !(c.ForgetIDNumber && s.KYC.Digest != ""):
		return Decision{Err: fmt.Errorf("%w: %s is already at tier %d", ErrConflict, a.ID, c.Tier)}
	case c.IDNumber != "" && len(r.cfg.IDNumberKey) == 0:
		return Decision{Err: errNoIDKey}
	}
	ch := &tierChange{Account: a.ID, Tier: c.Tier, Digest: s.KYC.Digest}
	row := func(field, from, to string) accountChange {
		return accountChange{Account: a.ID, Field: field, Old: from, New: to, Reason: reason, Actor: actor}
	}
	if s.KYC.Tier != c.Tier {
		ch.History = append(ch.History, row("tier", strconv.Itoa(s.KYC.Tier), strconv.Itoa(c.Tier)))
	}
	had := idNone
	if s.KYC.Digest != "" {
		had = idOnFile
	}
	switch {
	case c.IDNumber != "":
		ch.Digest = idNumberDigest(r.cfg.IDNumberKey, c.IDNumber)
		// A new number on file, or one replaced (the history cannot tell them apart by
		// their digests without keeping them: it says that one was given).
		ch.History = append(ch.History, row("id_number", had, idOnFile))
	case c.ForgetIDNumber && s.KYC.Digest != "":
		ch.Digest = ""
		ch.History = append(ch.History, row("id_number", had, idNone))
	}
	return Decision{Tier: ch}
}

// tierLimits are the limits of a payer's tier: tier is its wallet's, or -1 for a payer
// that has no tier (an agent), which the global limits bound alone. A tier's limit never
// passes the global one; 0 in Config.Tiers leaves it to the global one (max_balance: no
// cap).
func (r *rules) tierLimits(tier int) Tier {
	t := Tier{MaxPayment: r.cfg.MaxAmount, DailyMax: r.cfg.DailyMax}
	if tier < TierUnregistered || tier > TierFull {
		return t
	}
	c := r.cfg.Tiers[tier]
	if c.MaxPayment > 0 && c.MaxPayment < t.MaxPayment {
		t.MaxPayment = c.MaxPayment
	}
	if c.DailyMax > 0 && (t.DailyMax <= 0 || c.DailyMax < t.DailyMax) {
		t.DailyMax = c.DailyMax
	}
	t.MaxBalance = max(c.MaxBalance, 0)
	return t
}

// payeeRoom is what a credit looks at of the account it would credit: the account as
// the write reads it (its posted balance) and, for a wallet, its tier.
type payeeRoom struct {
	Account ledger.Account
	Tier    int // the wallet's tier; ignored for other accounts
}

// overCap reports whether crediting amount to the account in room would take a wallet
// past its tier's max_balance, and that cap. Only wallets have a cap.
func (r *rules) overCap(room payeeRoom, amount int64) (over bool, limit int64) {
	if room.Account.Type != ledger.Wallet {
		return false, 0
	}
	limit = r.tierLimits(room.Tier).MaxBalance
	return limit > 0 && room.Account.Balance.Posted+amount > limit, limit
}

// openingTier decides the tier a new account is opened at: nil for DefaultTier (no row
// of wallet_kyc), else the row to write (its Account filled in once the account exists).
// Only wallets take a tier, and TierFull takes an id number, as a change of tier does.
func (r *rules) openingTier(o OpenAccount) (*tierChange, error) {
	if o.Tier == nil {
		if o.IDNumber != "" {
			return nil, fmt.Errorf("%w: id_number: recorded only with tier 2 (full KYC)", ErrInvalid)
		}
		return nil, nil
	}
	if o.Type != ledger.Wallet {
		return nil, fmt.Errorf("%w: tier: only wallets have tiers, not %s accounts", ErrInvalid, o.Type)
	}
	d := r.accountTier(tierSnapshot{Account: &ledger.Account{ID: "new", Type: ledger.Wallet}, KYC: walletKYC{Tier: -1}},
		AccountTierChange{Account: "new", Tier: *o.Tier, IDNumber: o.IDNumber, Reason: "opened", Actor: "opened"})
	if d.Err != nil {
		return nil, d.Err
	}
	c := d.Tier
	c.History = nil // opening is not a change: the account's history starts empty
	return c, nil
}

// defaultTierSQL is DefaultTier in a query: a wallet without a row of wallet_kyc.
const defaultTierSQL = "1"

// payerTier is the tier whose limits bind a payer: its wallet's tier, or -1 (the global
// limits alone) for an account that has no tier (an agent).
func payerTier(a ledger.Account, tier int) int {
	if a.Type != ledger.Wallet {
		return -1
	}
	return tier
}

// ProblemBalanceCap: a transfer's recipient would pass its tier's max_balance; the
// transfer failed at its confirmation and its hold was released.
const ProblemBalanceCap Problem = "balance_cap"

// balanceCapError is an operator's refusal of a credit of amount that would take the
// wallet in room past its tier's cap limit; what says what was not done.
func (r *rules) balanceCapError(room payeeRoom, amount, limit int64, what string) error {
	a := room.Account
	return fmt.Errorf("%w: %s (tier %d) holds %s; %s more would pass its maximum balance of %s; %s",
		ErrBalanceCap, a.ID, room.Tier, r.money(a.Balance.Posted), r.money(amount), r.money(limit), what)
}

// capsOn reports whether any tier caps balances: otherwise a credit reads nothing more.
func (r *rules) capsOn() bool {
	for _, t := range r.cfg.Tiers {
		if t.MaxBalance > 0 {
			return true
		}
	}
	return false
}

// roomStep asks the applier of a confirmation for what its transfer's recipient can
// take (payeeRoom), once the code was found right.
const roomStep = fundsStep + 1

// needsRoom reports whether confirming p credits an account that may have a cap: a
// transfer to another number's wallet (merchants, agents and carriers have none).
func (r *rules) needsRoom(p *Payment) bool {
	return p.Type == TransferPayment && p.State == StatePendingOTP && r.capsOn()
}

// refuseOverCap fails the transfer p, whose right code was given through ch, because it
// would take its recipient's wallet past limit: the hold is released and the code dies;
// the payer is told the recipient cannot receive that much, and the recipient that a
// transfer could not reach it and why (it is theirs to raise their tier), without the
// balance it holds.
func (r *rules) refuseOverCap(p *Payment, ch Channel, limit int64) Decision {
	v := r.vars(p)
	v["cap"] = r.money(limit)
	text := r.texts.Render("balance_cap_payer", v)
	d := Decision{Payment: p, Release: true, Move: EvFail,
		Reason:  "the recipient's wallet would pass its tier's maximum balance",
		Auth:    []authNote{{Channel: ch, Event: "confirmed", Detail: "the right code; the payment refused: the recipient's balance cap"}},
		Outcome: Outcome{Payment: p, Problem: ProblemBalanceCap, Text: text}}
	d.Messages = r.sms(p.PayerMSISDN, "failed", p.ID, text, false)
	d.Messages = append(d.Messages, r.sms(p.PayeeMSISDN, "notice", p.ID, r.texts.Render("balance_cap_payee", v), false)...)
	return d
}
