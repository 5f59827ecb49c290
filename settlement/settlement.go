// Package settlement closes a business day for merchants: each merchant's takings of the
// day move from its account to the settlement account of its currency, in one ledger
// transfer per merchant and day, and a report lists what was settled and why.
//
// # Takings
//
// A merchant's takings of business day D (the calendar day D in the configured time
// zone, [00:00 D, 00:00 D+1) local time) are
//
//	payments  = the sum of the transfers of kind "merchant_payment" that credit the
//	            merchant, with a journal time within D
//	reversals = the sum of the transfers of kind "reversal" that debit the merchant, with
//	            a journal time within D (whenever the reversed payment was made)
//	takings   = payments - reversals
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
// Settle refuses a day that has not ended yet in the business time zone: takings booked
// after the run would otherwise be left out for good.
package settlement

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
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
)

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

	Payments, PaymentsAmount   int64 // merchant_payment credits within the day
	Reversals, ReversalsAmount int64 // reversal debits within the day
	Takings                    int64 // PaymentsAmount - ReversalsAmount

	Settled    int64  // what the day's settlement transfer moved (this run or an earlier one)
	TransferID string // that transfer, if any
	Status     string
	Note       string
}

// Totals sum a report's lines of one currency.
type Totals struct {
	Merchants                  int
	Payments, PaymentsAmount   int64
	Reversals, ReversalsAmount int64
	Takings, Settled           int64
}

// Report is a day's settlement: one line per merchant that had payments or reversals in
// the day or has a settlement for it, ordered by merchant code.
type Report struct {
	Day    Day
	Lines  []Line
	Totals map[string]Totals // by currency
}

// Settle settles day for every merchant in one ledger transaction and returns the
// report. now is the time of the run; a day that has not ended by then is ErrDayNotOver.
// When the ledger refused some merchants' transfers the others still commit, and the
// report comes with ErrIncomplete.
func Settle(ctx context.Context, l *ledger.Ledger, day Day, now time.Time) (Report, error) {
	if now.Before(day.End) {
		return Report{}, fmt.Errorf("%w: %s ends at %s", ErrDayNotOver, day.Date, day.End.Format(time.RFC3339))
	}
	var lines []Line
	// lines is only read after Write returns nil, so a failed commit leaves nothing
	// behind that claims money moved.
	err := l.DB().Write(ctx, func(tx store.Tx) error {
		lines = nil
		var err error
		lines, err = settle(ctx, l.In(tx), tx, day)
		return err
	})
	if err != nil {
		return Report{}, err
	}
	r := Report{Day: day, Lines: lines, Totals: map[string]Totals{}}
	failed := 0
	for _, ln := range lines {
		t := r.Totals[ln.Currency]
		t.Merchants++
		t.Payments += ln.Payments
		t.PaymentsAmount += ln.PaymentsAmount
		t.Reversals += ln.Reversals
		t.ReversalsAmount += ln.ReversalsAmount
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

func settle(ctx context.Context, lt *ledger.Tx, tx store.Tx, day Day) ([]Line, error) {
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
		key := Key(day, m.ID)
		tr, err := ledger.TransferByKey(ctx, tx, key)
		switch {
		case err == nil:
			ln.TransferID, ln.Settled = tr.ID, tr.Amount
			ln.Status = StatusAlreadySettled
		case !errors.Is(err, ledger.ErrNotFound):
			return nil, fmt.Errorf("settlement: look up %s: %w", key, err)
		case ln.Payments == 0 && ln.Reversals == 0:
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
		case t.Kind == KindMerchantPayment && t.Direction == ledger.Credit:
			ln.Payments, ln.PaymentsAmount = t.Count, t.Amount
		case t.Kind == ledger.KindReversal && t.Direction == ledger.Debit:
			ln.Reversals, ln.ReversalsAmount = t.Count, t.Amount
		}
	}
	ln.Takings = ln.PaymentsAmount - ln.ReversalsAmount
	return nil
}

// csvHeader is the header row of the settlement file.
var csvHeader = [...]string{"date", "merchant_id", "merchant_code", "merchant_name", "currency",
	"payments", "payments_amount", "reversals", "reversals_amount", "takings", "settled",
	"transfer_id", "status", "note"}

// WriteCSV writes r as the settlement file: a header row, then one row per line.
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
			i(ln.Takings, 10), i(ln.Settled, 10), t(ln.TransferID), t(ln.Status), t(ln.Note)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("settlement: write report: %w", err)
	}
	return nil
}
