// Package settlement closes a business day for merchants: each merchant's takings of the
// day move from its account to the settlement account of its currency, in one ledger
// transfer per merchant and day, and a report lists what was settled and why.
//
// # Takings
//
// A merchant's takings of business day D (the calendar day D in the configured time
// zone, [00:00 D, 00:00 D+1) local time) are
//
//	payments  = the sum of the transfers of kind "merchant_payment" or "escrow_release"
//	            that credit the merchant, with a journal time within D (a guaranteed
//	            payment counts when it is released to the merchant)
//	reversals = the sum of the transfers of kind "reversal" that debit the merchant, with
//	            a journal time within D (whenever the reversed payment was made)
//	refunds   = the same for the transfers of kind "refund"
//	takings   = payments - reversals - refunds
//
// and the amount settled is min(max(0, takings), available), where available is the
// merchant's available balance (posted - held) when Settle runs. Deposits, transfers and
// earlier settlements on the merchant's account are not takings.
//
// Negative takings (more reversed than paid that day) settle nothing and are not carried
// to another day. When available is below takings (a reversal after the day, or a hold,
// took money the day's takings counted on), Settle moves only what is available, marks
// the line "short", and the rest stays in the merchant's account: the day is settled
// once, so a later run does not pay the remainder. Operators see it in the report.
//
// # Idempotency
//
// The transfer of merchant M for day D has the key "settlement:D:M" (D as YYYY-MM-DD).
// A day's run books the transfers of every merchant in one transaction; running it again
// finds the keys and moves nothing more, reporting the amounts of the first run ("already
// settled"). A merchant that nothing was moved for (no takings, nothing available, or a
// refusal such as a frozen account) has no key, so a later run settles it if it can.
//
// # Stores
//
// With a StoresOf (SettleByStore), a merchant whose day had payments to a store's till
// gets one more line per store beside its own, each with the store's payments,
// reversals, refunds and takings (a reversal or refund counts against the store of the
// payment it undoes), and "main" for what was paid to the merchant's own code. The
// store lines of a merchant add up to its line; the money moves once, by the merchant's
// line.
//
// Settle refuses a day that has not ended yet in the business time zone: takings booked
// after the run would otherwise be left out for good.
package settlement

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/payswitch/payswitch/internal/csvcell"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// Transfer kinds Settle reads and writes.
const (
	// KindMerchantPayment is the kind of the transfers that pay a merchant.
	KindMerchantPayment = "merchant_payment"
	// KindSettlement is the kind of the transfers Settle books.
	KindSettlement = "settlement"
	// KindEscrowRelease and KindRefund are package switch's kinds of the same names
	// (contract section 11), copied so that settlement reads the ledger alone.
	KindEscrowRelease = "escrow_release"
	KindRefund        = "refund"
	// MainStore names, among a merchant's store lines, what was paid to its own code.
	MainStore = "main"
	// StatusStore marks a store line: a part of its merchant's line, not a settlement.
	StatusStore = "store"
)

// StoresOf returns the store of each payment of ids that was paid to a store's till,
// read in q (payswitch.PaymentStores); payments to a merchant's own code are left out.
type StoresOf func(ctx context.Context, q ledger.Querier, ids []string) (map[string]string, error)

// Errors returned by Settle and ParseDay.
var (
	// ErrBadDate: the date is not YYYY-MM-DD.
	ErrBadDate = errors.New("settlement: bad date")
	// ErrDayNotOver: the business day has not ended yet.
	ErrDayNotOver = errors.New("settlement: business day not over")
	// ErrIncomplete: some merchants could not be settled; the report says which and why.
	ErrIncomplete = errors.New("settlement: some merchants not settled")
)

// Line statuses: what happened to a merchant's takings.
const (
	StatusSettled        = "settled"         // this run moved all the takings
	StatusShort          = "short"           // this run moved what was available, less than the takings
	StatusAlreadySettled = "already_settled" // an earlier run settled the day
	StatusNothing        = "nothing"         // takings were zero or negative
	StatusFailed         = "failed"          // the ledger refused the transfer; Note says why
)

// Day is a business day: [Start, End) in the business time zone.
type Day struct {
	Date       string // YYYY-MM-DD
	Start, End time.Time
}

// ParseDay returns the business day date (YYYY-MM-DD) in loc. A day is 23 or 25 hours
// long where loc changes its clocks.
func ParseDay(date string, loc *time.Location) (Day, error) {
	start, err := time.ParseInLocation(time.DateOnly, date, loc)
	if err != nil || start.Format(time.DateOnly) != date {
		return Day{}, fmt.Errorf("%w: %q: want YYYY-MM-DD", ErrBadDate, date)
	}
	return Day{Date: date, Start: start, End: start.AddDate(0, 0, 1)}, nil
}

// KeyPrefix starts every settlement transfer's key; the day's date follows it, so that
// the ledger can list runs by date (ledger.KeyDateRuns) without a table of runs.
const KeyPrefix = "settlement:"

// Key is the idempotency key of merchant's settlement transfer for day.
func Key(day Day, merchant string) string { return KeyPrefix + day.Date + ":" + merchant }

// Line is one merchant's day.
type Line struct {
	MerchantID, Code, Name, Currency string

	Payments, PaymentsAmount   int64 // merchant_payment and escrow_release credits within the day
	Reversals, ReversalsAmount int64 // reversal debits within the day
	Refunds, RefundsAmount     int64 // refund debits within the day
	Takings                    int64 // PaymentsAmount - ReversalsAmount - RefundsAmount

	// Stores are the merchant's store lines (SettleByStore), when some of the day's
	// payments were to a store's till; they add up to the fields above.
	Stores []StoreLine

	Settled    int64  // what the day's settlement transfer moved (this run or an earlier one)
	TransferID string // that transfer, if any
	Status     string
	Note       string
}

// StoreLine is one store's part of its merchant's day.
type StoreLine struct {
	Store                      string // the store's ID, or MainStore
	Payments, PaymentsAmount   int64
	Reversals, ReversalsAmount int64
	Refunds, RefundsAmount     int64
	Takings                    int64
}

// Totals sum a report's lines of one currency.
type Totals struct {
	Merchants                  int
	Payments, PaymentsAmount   int64
	Reversals, ReversalsAmount int64
	Refunds, RefundsAmount     int64
	Takings, Settled           int64
}

// Report is a day's settlement: one line per merchant that had payments or reversals in
// the day or has a settlement for it, ordered by merchant code.
type Report struct {
	Day    Day
	Lines  []Line
	Totals map[string]Totals // by currency
	// Fees are the day's fees accounts, one line a currency (fees.go), written after
	// the merchants' lines.
	Fees []FeesLine
}

// Settle settles day for every merchant in one ledger transaction and returns the
// report. now is the time of the run; a day that has not ended by then is ErrDayNotOver.
// When the ledger refused some merchants' transfers the others still commit, and the
// report comes with ErrIncomplete.
func Settle(ctx context.Context, l *ledger.Ledger, day Day, now time.Time) (Report, error) {
	return SettleByStore(ctx, l, day, now, nil)
}

// SettleByStore is Settle with store lines: storesOf answers the store of a payment
// (nil: no store lines).
func SettleByStore(ctx context.Context, l *ledger.Ledger, day Day, now time.Time, storesOf StoresOf) (Report, error) {
	if now.Before(day.End) {
		return Report{}, fmt.Errorf("%w: %s ends at %s", ErrDayNotOver, day.Date, day.End.Format(time.RFC3339))
	}
	var lines []Line
	var fees []FeesLine
	// lines is only read after Write returns nil, so a failed commit leaves nothing
	// behind that claims money moved.
	err := l.DB().Write(ctx, func(tx store.Tx) error {
		lines = nil
		if err := lockDay(ctx, tx, l.DB().Dialect(), day); err != nil { // postgres.go
			return err
		}
		var err error
		if lines, err = settle(ctx, l.In(tx), tx, day, storesOf); err != nil {
			return err
		}
		fees, err = dayFees(ctx, tx, day) // fees.go
		return err
	})
	if err != nil {
		return Report{}, err
	}
	r := Report{Day: day, Lines: lines, Totals: map[string]Totals{}, Fees: fees}
	failed := 0
	for _, ln := range lines {
		t := r.Totals[ln.Currency]
		t.Merchants++
		t.Payments += ln.Payments
		t.PaymentsAmount += ln.PaymentsAmount
		t.Reversals += ln.Reversals
		t.ReversalsAmount += ln.ReversalsAmount
		t.Refunds += ln.Refunds
		t.RefundsAmount += ln.RefundsAmount
		t.Takings += ln.Takings
		t.Settled += ln.Settled
		r.Totals[ln.Currency] = t
		if ln.Status == StatusFailed {
			failed++
		}
	}
	if failed > 0 {
		return r, fmt.Errorf("%w: %d of %d", ErrIncomplete, failed, len(lines))
	}
	return r, nil
}

func settle(ctx context.Context, lt *ledger.Tx, tx store.Tx, day Day, storesOf StoresOf) ([]Line, error) {
	span, err := ledger.JournalSpan(ctx, tx, day.Start, day.End)
	if err != nil {
		return nil, fmt.Errorf("settlement: %w", err)
	}
	merchants, err := ledger.Merchants(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("settlement: %w", err)
	}

	var lines []Line
	for _, m := range merchants {
		ln := Line{MerchantID: m.ID, Code: m.Code, Name: m.Name, Currency: m.Currency}
		if err := takings(ctx, tx, &ln, span); err != nil {
			return nil, err
		}
		if storesOf != nil && ln.Payments+ln.Reversals+ln.Refunds > 0 {
			if ln.Stores, err = storeLines(ctx, tx, ln.MerchantID, span, storesOf); err != nil {
				return nil, err
			}
		}
		key := Key(day, m.ID)
		tr, err := ledger.TransferByKey(ctx, tx, key)
		switch {
		case err == nil:
			ln.TransferID, ln.Settled = tr.ID, tr.Amount
			ln.Status = StatusAlreadySettled
		case !errors.Is(err, ledger.ErrNotFound):
			return nil, fmt.Errorf("settlement: look up %s: %w", key, err)
		case ln.Payments == 0 && ln.Reversals == 0 && ln.Refunds == 0:
			continue // a merchant with nothing that day is not in the report
		case ln.Takings <= 0:
			ln.Status = StatusNothing
		default:
			settleOne(ctx, lt, &ln, key)
		}
		lines = append(lines, ln)
	}
	return lines, nil
}

// settleOne moves ln's takings, or what is available of them, to the settlement account.
func settleOne(ctx context.Context, lt *ledger.Tx, ln *Line, key string) {
	fail := func(err error) {
		ln.Status, ln.Note = StatusFailed, err.Error()
	}
	acc, err := lt.Account(ctx, ln.MerchantID)
	if err != nil {
		fail(err)
		return
	}
	amount := min(ln.Takings, acc.Balance.Available)
	if amount <= 0 {
		ln.Status = StatusShort
		ln.Note = fmt.Sprintf("available %d of takings %d", acc.Balance.Available, ln.Takings)
		return
	}
	dest, err := lt.SystemAccount(ctx, ledger.Settlement, ln.Currency, ln.Currency)
	if err != nil {
		fail(err)
		return
	}
	tr, err := lt.Transfer(ctx, ledger.TransferRequest{Key: key, Debit: ln.MerchantID, Credit: dest.ID,
		Amount: amount, Kind: KindSettlement})
	if err != nil {
		fail(err)
		return
	}
	ln.Settled, ln.TransferID, ln.Status = tr.Amount, tr.ID, StatusSettled
	if amount < ln.Takings {
		ln.Status = StatusShort
		ln.Note = fmt.Sprintf("available %d of takings %d", acc.Balance.Available, ln.Takings)
	}
}

// takings fills in ln's payments and reversals among the entries of span (the day's).
func takings(ctx context.Context, tx store.Tx, ln *Line, span ledger.Span) error {
	totals, err := ledger.TotalsByKind(ctx, tx, ln.MerchantID, span)
	if err != nil {
		return fmt.Errorf("settlement: %w", err)
	}
	for _, t := range totals {
		switch {
		case (t.Kind == KindMerchantPayment || t.Kind == KindEscrowRelease) && t.Direction == ledger.Credit:
			ln.Payments, ln.PaymentsAmount = ln.Payments+t.Count, ln.PaymentsAmount+t.Amount
		case t.Kind == ledger.KindReversal && t.Direction == ledger.Debit:
			ln.Reversals, ln.ReversalsAmount = t.Count, t.Amount
		case t.Kind == KindRefund && t.Direction == ledger.Debit:
			ln.Refunds, ln.RefundsAmount = t.Count, t.Amount
		}
	}
	ln.Takings = ln.PaymentsAmount - ln.ReversalsAmount - ln.RefundsAmount
	return nil
}

// storeLines splits merchantID's takings within span by store: the same entries that
// takings sums, each under the store of its payment. None when every one was paid to
// the merchant's own code.
func storeLines(ctx context.Context, tx store.Tx, merchantID string, span ledger.Span, storesOf StoresOf) ([]StoreLine, error) {
	var es []ledger.AccountEntry
	var ids []string
	for e, err := range ledger.AccountEntriesOfKinds(ctx, tx, merchantID, span,
		KindMerchantPayment, KindEscrowRelease, ledger.KindReversal, KindRefund) {
		if err != nil {
			return nil, fmt.Errorf("settlement: %w", err)
		}
		es = append(es, e)
		ids = append(ids, e.PaymentID)
	}
	stores := map[string]string{}
	for i := 0; i < len(ids); i += storesBatch {
		m, err := storesOf(ctx, tx, ids[i:min(i+storesBatch, len(ids))])
		if err != nil {
			return nil, fmt.Errorf("settlement: stores of payments: %w", err)
		}
		for k, v := range m {
			stores[k] = v
		}
	}
	if len(stores) == 0 {
		return nil, nil
	}
	byStore := map[string]*StoreLine{}
	for _, e := range es {
		name := stores[e.PaymentID]
		if name == "" {
			name = MainStore
		}
		sl := byStore[name]
		if sl == nil {
			sl = &StoreLine{Store: name}
			byStore[name] = sl
		}
		switch {
		case (e.Kind == KindMerchantPayment || e.Kind == KindEscrowRelease) && e.Direction == ledger.Credit:
			sl.Payments, sl.PaymentsAmount = sl.Payments+1, sl.PaymentsAmount+e.Amount
		case e.Kind == ledger.KindReversal && e.Direction == ledger.Debit:
			sl.Reversals, sl.ReversalsAmount = sl.Reversals+1, sl.ReversalsAmount+e.Amount
		case e.Kind == KindRefund && e.Direction == ledger.Debit:
			sl.Refunds, sl.RefundsAmount = sl.Refunds+1, sl.RefundsAmount+e.Amount
		}
	}
	out := make([]StoreLine, 0, len(byStore))
	for _, sl := range byStore {
		sl.Takings = sl.PaymentsAmount - sl.ReversalsAmount - sl.RefundsAmount
		out = append(out, *sl)
	}
	// "main" first, then the stores by ID.
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Store == MainStore) != (out[j].Store == MainStore) {
			return out[i].Store == MainStore
		}
		return out[i].Store < out[j].Store
	})
	return out, nil
}

// storesBatch is how many payments one question to StoresOf names.
const storesBatch = 500

// csvHeader is the header row of the settlement file.
var csvHeader = [...]string{"date", "merchant_id", "merchant_code", "merchant_name", "currency",
	"payments", "payments_amount", "reversals", "reversals_amount", "takings", "settled",
	"transfer_id", "status", "note", "refunds", "refunds_amount", "store"}

// WriteCSV writes r as the settlement file: a header row, then one row per line, each
// followed by its store lines (status "store", the store's ID or "main" in the store
// column, settled and transfer_id left empty: the money moved once, by the merchant's
// line).
// Amounts are integers in minor units, written as they are (takings may be -1500); every
// text cell goes through csvcell.Text, since merchants choose their own names and the
// file is opened in spreadsheets.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader[:])
	i := strconv.FormatInt
	t := csvcell.Text
	for _, ln := range r.Lines {
		cw.Write([]string{t(r.Day.Date), t(ln.MerchantID), t(ln.Code), t(ln.Name), t(ln.Currency),
			i(ln.Payments, 10), i(ln.PaymentsAmount, 10), i(ln.Reversals, 10), i(ln.ReversalsAmount, 10),
			i(ln.Takings, 10), i(ln.Settled, 10), t(ln.TransferID), t(ln.Status), t(ln.Note),
			i(ln.Refunds, 10), i(ln.RefundsAmount, 10), ""})
		for _, sl := range ln.Stores {
			cw.Write([]string{t(r.Day.Date), t(ln.MerchantID), t(ln.Code), t(ln.Name), t(ln.Currency),
				i(sl.Payments, 10), i(sl.PaymentsAmount, 10), i(sl.Reversals, 10), i(sl.ReversalsAmount, 10),
				i(sl.Takings, 10), "", "", StatusStore, "", i(sl.Refunds, 10), i(sl.RefundsAmount, 10), t(sl.Store)})
		}
	}
	for _, fl := range r.Fees { // fees.go
		cw.Write(feesRow(r.Day.Date, fl))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("settlement: write report: %w", err)
	}
	return nil
}
