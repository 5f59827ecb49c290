package payswitch

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MerchantPaymentFilter chooses and pages a merchant's payments.
type MerchantPaymentFilter struct {
	State  State     // only payments in this state; "" for every state
	From   time.Time // created at or after; zero for no bound
	To     time.Time // created before; zero for no bound
	Limit  int       // 1 to 100; 0 for 20
	Cursor string    // the cursor returned with the previous page; "" for the first page
}

// maxMerchantPage bounds a page of MerchantPayments.
const maxMerchantPage = 100

// merchantPaymentsQuery lists the payments to merchant ?1, newest first: in state ?2
// (any when empty), created in [?3, ?4), and before the cursor (created_at ?5, id ?6) in
// that order. created_at <= ?5 repeats the cursor's bound in a form an index range can
// use; the OR alone would make SQLite read every payment of the merchant up to it.
// The order (created_at, id) is total, so a page never repeats or skips a payment that
// shares its time with the last one shown.
const merchantPaymentsQuery = `SELECT ` + paymentColumns + ` FROM payments
	WHERE payee_account = ?1 AND (?2 = '' OR state = ?2)
		AND created_at >= ?3 AND created_at < ?4
		AND created_at <= ?5 AND (created_at < ?5 OR id < ?6)
	ORDER BY created_at DESC, id DESC LIMIT ?7`

// MerchantPayments returns a page of the payments whose payee is the account
// merchantID, newest first, and the cursor of the next page ("" after the last). Bad
// filter values (a limit out of range, a cursor this did not make, To before From) are
// ErrInvalid. It reads the committed state, off the store's writer.
func (e *Engine) MerchantPayments(ctx context.Context, merchantID string, f MerchantPaymentFilter) ([]*Payment, string, error) {
	limit := f.Limit
	switch {
	case limit == 0:
		limit = 20
	case limit < 0 || limit > maxMerchantPage:
		return nil, "", fmt.Errorf("%w: limit: 1 to %d", ErrInvalid, maxMerchantPage)
	}
	if !validStateWord(string(f.State)) {
		return nil, "", fmt.Errorf("%w: state: a payment state such as completed or requested", ErrInvalid)
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !f.From.IsZero() {
		from = f.From.UnixMicro()
	}
	if !f.To.IsZero() {
		to = f.To.UnixMicro()
	}
	if from > to {
		return nil, "", fmt.Errorf("%w: to is before from", ErrInvalid)
	}
	// Without a cursor the bound is above every payment: the largest time, and an ID
	// that sorts after every ID (IDs are upper-case letters and digits).
	before, beforeID := int64(math.MaxInt64), "~"
	if f.Cursor != "" {
		var ok bool
		if before, beforeID, ok = parseCursor(f.Cursor); !ok {
			return nil, "", fmt.Errorf("%w: cursor: give the next_cursor of the previous page as it was", ErrInvalid)
		}
	}
	rows, err := e.db.Reader().QueryContext(ctx, merchantPaymentsQuery, merchantID, string(f.State),
		from, to, before, beforeID, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("merchant payments: %w", err)
	}
	defer rows.Close()
	out := make([]*Payment, 0, limit+1)
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, "", fmt.Errorf("merchant payments: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("merchant payments: %w", err)
	}
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, makeCursor(last.CreatedAt.UnixMicro(), last.ID), nil
}

// validStateWord reports whether s could be a state: "" or a word of lower-case letters
// and underscores. Which states exist is the state machine's; an unknown one finds none.
func validStateWord(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// makeCursor is the opaque cursor of the page after the payment created at createdAt
// (Unix µs) with ID id. It is opaque so that clients keep it as it is, and the order
// it encodes can change without breaking them.
func makeCursor(createdAt int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(createdAt, 10) + "." + id))
}

// parseCursor reads a cursor that makeCursor made.
func parseCursor(c string) (createdAt int64, id string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", false
	}
	at, id, found := strings.Cut(string(b), ".")
	if !found || !ValidPaymentID(id) {
		return 0, "", false
	}
	createdAt, err = strconv.ParseInt(at, 10, 64)
	return createdAt, id, err == nil
}
