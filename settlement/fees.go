package settlement

import (
	"context"
	"fmt"
	"strconv"

	"github.com/payswitch/payswitch/internal/csvcell"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// The fees line (contract section 14): the settlement file carries, per currency, the
// day of the switch's fees account (fees:<currency>), so that the fees charged and the
// agents' commissions paid out of them are reconciled with the merchants' takings in one
// file. Nothing moves for it: fees are the switch's income, not a merchant's.

// StatusFees marks a currency's fees line.
const StatusFees = "fees"

// KindFee and KindCommission are package switch's ledger kinds of the same names (its
// fees.go): a payer's fee into the fees account, an agent's commission out of it.
const (
	KindFee        = "fee"
	KindCommission = "commission"
)

// feesNote says in the file what the fees line's reused columns hold.
const feesNote = "payments: fees charged; refunds: agents' commissions paid; reversals: fees given back less commissions taken back"

// FeesLine is a currency's fees account over the day.
type FeesLine struct {
	AccountID, Currency string

	Fees, FeesAmount               int64 // fee credits within the day
	Commissions, CommissionsAmount int64 // commission debits within the day
	// Reversals counts the reversal entries on the account within the day;
	// ReversalsAmount is their debits (fees given back) less their credits
	// (commissions taken back from agents).
	Reversals, ReversalsAmount int64
	// Net is FeesAmount - CommissionsAmount - ReversalsAmount: what the account gained
	// by these kinds, which is its balance's change over the day when nothing else
	// touched it.
	Net int64
}

// feesLines reads the day (span) of every fees account, ordered by currency; an account
// with no entries of these kinds that day has no line.
func feesLines(ctx context.Context, tx store.Tx, span ledger.Span) ([]FeesLine, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, currency FROM accounts WHERE type = ? ORDER BY currency, id`, string(ledger.Fees))
	if err != nil {
		return nil, fmt.Errorf("settlement: read fees accounts: %w", err)
	}
	var lines []FeesLine
	for rows.Next() {
		var fl FeesLine
		if err := rows.Scan(&fl.AccountID, &fl.Currency); err != nil {
			rows.Close()
			return nil, fmt.Errorf("settlement: read fees accounts: %w", err)
		}
		lines = append(lines, fl)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("settlement: read fees accounts: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("settlement: read fees accounts: %w", err)
	}
	out := lines[:0]
	for _, fl := range lines {
		totals, err := ledger.TotalsByKind(ctx, tx, fl.AccountID, span)
		if err != nil {
			return nil, fmt.Errorf("settlement: %w", err)
		}
		for _, t := range totals {
			switch {
			case t.Kind == KindFee && t.Direction == ledger.Credit:
				fl.Fees, fl.FeesAmount = t.Count, t.Amount
			case t.Kind == KindCommission && t.Direction == ledger.Debit:
				fl.Commissions, fl.CommissionsAmount = t.Count, t.Amount
			case t.Kind == ledger.KindReversal && t.Direction == ledger.Debit:
				fl.Reversals, fl.ReversalsAmount = fl.Reversals+t.Count, fl.ReversalsAmount+t.Amount
			case t.Kind == ledger.KindReversal && t.Direction == ledger.Credit:
				fl.Reversals, fl.ReversalsAmount = fl.Reversals+t.Count, fl.ReversalsAmount-t.Amount
			}
		}
		if fl.Fees+fl.Commissions+fl.Reversals == 0 {
			continue
		}
		fl.Net = fl.FeesAmount - fl.CommissionsAmount - fl.ReversalsAmount
		out = append(out, fl)
	}
	return out, nil
}

// feesRow is fl as a row of the settlement file (see feesNote).
func feesRow(date string, fl FeesLine) []string {
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	t := csvcell.Text
	return []string{t(date), t(fl.AccountID), "", "fees", t(fl.Currency),
		i(fl.Fees), i(fl.FeesAmount), i(fl.Reversals), i(fl.ReversalsAmount), i(fl.Net), "0", "",
		StatusFees, t(feesNote), i(fl.Commissions), i(fl.CommissionsAmount), ""}
}

// dayFees is feesLines over day's journal span.
func dayFees(ctx context.Context, tx store.Tx, day Day) ([]FeesLine, error) {
	span, err := ledger.JournalSpan(ctx, tx, day.Start, day.End)
	if err != nil {
		return nil, fmt.Errorf("settlement: %w", err)
	}
	return feesLines(ctx, tx, span)
}
