package payswitch

import (
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/ledger"
)

// The tariff of contract section 14. A payment's fee is priced when it is requested
// (rules.fee) and fixed on it (Payment.Fee): a tariff changed later prices only the
// payments requested after it. The payer pays amount + fee.
//
// The fee moves as a ledger movement of its own, beside the payment's amount and in the
// same transaction, so that every movement stays one balanced pair of entries and the
// amount's transfer (the one reversals, refunds and escrow work on) is unchanged:
//
//   - a payment with a code step holds the fee too, payer → fees, under the key
//     "fee:<payment id>" (the amount's hold is "<payment id>:hold"). Confirming posts
//     both; cancelling, expiring or failing voids both.
//   - a merchant's request to pay holds nothing: its confirmation books the fee as a
//     transfer of kind "fee" under the same key, beside the amount's.
//   - a withdrawal at an agent also holds the agent's commission, fees → agent, under
//     "commission:<payment id>", priced by the tariff's agent_commission bands when the
//     withdrawal is requested and posted with it.
//
// The funds check covers amount + fee. The daily limit counts the amount only: the fee is
// the switch's charge, not money the customer sends.

// Ledger kinds and keys of the tariff's movements.
const (
	KindFee        = "fee"
	KindCommission = "commission"
)

// ProblemNotAgent refuses a withdrawal to a number that is not an agent's (ErrNotAgent's
// SMS); ProblemUsageWithdraw is WITHDRAW's usage.
const (
	ProblemNotAgent      Problem = "not_agent"
	ProblemUsageWithdraw Problem = "usage_withdraw"
)

// CmdWithdraw is WITHDRAW <agent number> <amount>: cash out at an agent.
const CmdWithdraw CommandKind = "withdraw"

func feeKey(id string) string        { return "fee:" + id }
func commissionKey(id string) string { return "commission:" + id }

// fee is what a payment of typ and amount costs its payer under the tariff: 0 without a
// tariff; ok is false for an amount past its type's last band (refused as over the
// limit).
func (r *rules) fee(typ PaymentType, amount int64) (fee int64, ok bool) {
	if r.cfg.Tariff == nil {
		return 0, true
	}
	return r.cfg.Tariff.Fee(string(typ), amount)
}

// commission is what an agent earns for a withdrawal of amount, paid from the fees
// account: 0 without a tariff or past its bands.
func (r *rules) commission(amount int64) int64 {
	if r.cfg.Tariff == nil {
		return 0
	}
	c, ok := r.cfg.Tariff.Fee("agent_commission", amount)
	if !ok {
		return 0
	}
	return c
}

// withFee is the text key for p: key's "_fee" variant, which names the fee, when p has
// one and the catalogue has that variant; else key, so that the texts of free payments
// stay as they were.
func withFee(key string, p *Payment) string {
	if p == nil || p.Fee == 0 {
		return key
	}
	if _, ok := DefaultTexts[key+"_fee"]; ok {
		return key + "_fee"
	}
	return key
}

// feesAccount is the switch's fees account, made on first use.
func (o *op) feesAccount() (string, error) {
	a, err := o.lt.SystemAccount(o.ctx, ledger.Fees, o.e.cfg.Currency, o.e.cfg.Currency)
	if err != nil {
		return "", fmt.Errorf("fees account: %w", err)
	}
	return a.ID, nil
}

// checkFeeFunds reads whether the payer of p can pay amount + fee, before any hold is
// written, so that a refusal writes nothing: insufficient is then set, with what is
// available. A payment without a fee is left to the amount's hold to check.
func (o *op) checkFeeFunds(p *Payment) (holdResult, bool, error) {
	if p.Fee == 0 {
		return holdResult{}, true, nil
	}
	a, err := o.lt.Account(o.ctx, p.PayerAccount)
	if err != nil {
		return holdResult{}, false, err
	}
	if a.Status == ledger.Active && a.Balance.Available < p.Amount+p.Fee {
		return holdResult{asked: true, insufficient: true, available: a.Balance.Available}, false, nil
	}
	return holdResult{}, true, nil
}

// holdFees holds p's fee (payer → fees) and, for a withdrawal, the agent's commission
// (fees → agent), after the amount's hold. The funds were checked (checkFeeFunds): a
// refusal here is an error that rolls the request back.
func (o *op) holdFees(p *Payment) error {
	if p.Fee == 0 && p.Type != WithdrawalPayment {
		return nil
	}
	fees, err := o.feesAccount()
	if err != nil {
		return err
	}
	if p.Fee > 0 {
		if _, err := o.lt.Hold(o.ctx, ledger.HoldRequest{Key: feeKey(p.ID), Debit: p.PayerAccount, Credit: fees,
			Amount: p.Fee, PaymentID: p.ID, Kind: KindFee}); err != nil {
			return fmt.Errorf("hold fee of %s: %w", p.ID, err)
		}
	}
	if c := o.e.commission(p.Amount); p.Type == WithdrawalPayment && c > 0 {
		if _, err := o.lt.Hold(o.ctx, ledger.HoldRequest{Key: commissionKey(p.ID), Debit: fees, Credit: p.PayeeAccount,
			Amount: c, PaymentID: p.ID, Kind: KindCommission}); err != nil {
			return fmt.Errorf("hold commission of %s: %w", p.ID, err)
		}
	}
	return nil
}

// postFees posts p's fee and commission holds, if any; the caller posts the amount's
// last, so that its transfer's balances (which the receipt and the notice show) are the
// payer's and the payee's after everything.
func (o *op) postFees(p *Payment) error {
	if p.Fee > 0 {
		if _, err := o.lt.Post(o.ctx, feeKey(p.ID)); err != nil {
			return fmt.Errorf("post fee of %s: %w", p.ID, err)
		}
	}
	if p.Type == WithdrawalPayment {
		if _, err := o.lt.Post(o.ctx, commissionKey(p.ID)); err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("post commission of %s: %w", p.ID, err)
		}
	}
	return nil
}

// voidFees voids p's fee and commission holds, if any.
func (o *op) voidFees(p *Payment) error {
	if p.Fee == 0 && p.Type != WithdrawalPayment {
		return nil
	}
	for _, key := range []string{feeKey(p.ID), commissionKey(p.ID)} {
		if _, err := o.lt.Void(o.ctx, key); err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("void %s: %w", key, err)
		}
	}
	return nil
}

// transferFee books the fee of p, a merchant's request to pay confirmed (nothing was
// held), before its amount's transfer.
func (o *op) transferFee(p *Payment) error {
	if p.Fee == 0 {
		return nil
	}
	fees, err := o.feesAccount()
	if err != nil {
		return err
	}
	if _, err := o.lt.Transfer(o.ctx, ledger.TransferRequest{Key: feeKey(p.ID), Debit: p.PayerAccount, Credit: fees,
		Amount: p.Fee, PaymentID: p.ID, Kind: KindFee}); err != nil {
		return fmt.Errorf("fee of %s: %w", p.ID, err)
	}
	return nil
}

// reverseFees undoes p's fee (fees → payer) and, for a withdrawal, the agent's
// commission (agent → fees), under keys derived from the reversal's key, before the
// amount's reversal: an operator's reversal gives the payer back everything paid.
func (o *op) reverseFees(p *Payment, key string) error {
	for _, k := range []struct{ orig, suffix string }{{feeKey(p.ID), ":fee"}, {commissionKey(p.ID), ":commission"}} {
		if k.suffix == ":fee" && p.Fee == 0 || k.suffix == ":commission" && p.Type != WithdrawalPayment {
			continue
		}
		tr, err := ledger.TransferByKey(o.ctx, o.tx, k.orig)
		if errors.Is(err, ledger.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := o.lt.Reverse(o.ctx, tr.ID, key+k.suffix); err != nil {
			return fmt.Errorf("reverse %s: %w", k.orig, err)
		}
	}
	return nil
}
