package payswitch

import (
	"context"
	"errors"
	"strconv"

	"github.com/payswitch/payswitch/ledger"
)

// SalesText answers SALES from msisdn: today's takings (in the business time zone, so
// far) of the merchant whose registered phone it is, or of the store whose phone it is.
// Any other number gets the same neutral refusal whether or not it has an account, so
// that the answer tells nothing about who is a merchant. It reads the last committed
// state, off the store's writer.
func (e *Engine) SalesText(ctx context.Context, msisdn string) (string, error) {
	refused := e.texts.Render("sales_refused", nil)
	if e.sales == nil {
		return refused, nil
	}
	n, err := e.Normalize(msisdn)
	if err != nil {
		return refused, nil
	}
	merchant, storeID, where := "", "", ""
	a, err := e.ledger.AccountByMSISDN(ctx, n)
	switch {
	case err == nil && a.Type == ledger.Merchant:
		merchant, where = a.ID, a.Name
	case err != nil && !errors.Is(err, ledger.ErrNotFound):
		return "", err
	}
	if merchant == "" && e.tills != nil {
		t, err := e.tills.TillByMSISDN(ctx, n)
		switch {
		case errors.Is(err, ErrUnknownTill):
			return refused, nil
		case err != nil:
			return "", err
		}
		m, err := e.merchantOfTill(ctx, t)
		if err != nil {
			return "", err
		}
		p := Payment{PayeeName: m.Name}
		payTill(&p, t)
		merchant, storeID, where = t.Merchant, t.Store, p.PayeeName
	}
	if merchant == "" {
		return refused, nil
	}
	from := e.startOfDay(e.now())
	t, err := e.sales.Totals(ctx, merchant, storeID, from, from.AddDate(0, 0, 1))
	if err != nil {
		return "", err
	}
	return e.texts.Render("sales", map[string]string{
		"day": from.Format("02/01"), "where": where, "payments": strconv.FormatInt(t.Payments, 10),
		"gross": e.money(t.Gross), "refunds": e.money(t.Refunds), "net": e.money(t.Net)}), nil
}
