package merchant

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// ErrTillTaken: the till is another store's till or a merchant's code (409 till_taken).
var ErrTillTaken = errors.New("merchant: till taken")

// DefaultMaxStores is how many stores, closed ones included, a merchant may have.
const DefaultMaxStores = 1_000

// Store statuses.
const (
	StoreOpen   = "open"
	StoreClosed = "closed"
)

// Store is one of a merchant's shops (contract section 11): its till is paid like the
// merchant's code, the money lands in the merchant's account, and the payment records
// the store.
type Store struct {
	ID        string
	Merchant  string // the merchant's account ID
	Name      string
	Till      string
	MSISDN    string // the store's phone, international form; "" for none
	Status    string // StoreOpen or StoreClosed
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Stores keeps merchants' stores and their tills. It is safe for concurrent use: writes
// go through the store's one writer. It answers the engine's questions about tills
// (payswitch.Tills).
type Stores struct {
	db        *store.DB
	opts      Options
	normalize func(string) (string, error)
}

var _ payswitch.Tills = (*Stores)(nil)

// NewStores returns the stores kept in db. normalize turns a phone number as typed into
// its international form (the engine's Normalize), so that a store's phone is spelled as
// every other number is.
func NewStores(db *store.DB, opts Options, normalize func(string) (string, error)) *Stores {
	return &Stores{db: db, opts: opts.withDefaults(), normalize: normalize}
}

// newStoreID draws a store's ID: "st_" and 64 random bits in hex.
func newStoreID() string {
	id := make([]byte, 8)
	rand.Read(id) // never fails: it crashes the program rather than return less
	return "st_" + hex.EncodeToString(id)
}

const storeColumns = `id, merchant_id, name, till, msisdn, status, created_at, updated_at`

func scanStore(r interface{ Scan(...any) error }) (Store, error) {
	var s Store
	var created, updated int64
	err := r.Scan(&s.ID, &s.Merchant, &s.Name, &s.Till, &s.MSISDN, &s.Status, &created, &updated)
	s.CreatedAt, s.UpdatedAt = fromMicros(created), fromMicros(updated)
	return s, err
}

// Create opens a store for merchantID. A bad name, till or number is ErrInvalid; a till
// that is another store's till or any account's code is ErrTillTaken (the database
// refuses it too: see Schema); a merchant with MaxStores stores ErrLimit.
func (s *Stores) Create(ctx context.Context, merchantID, name, till, msisdn string) (Store, error) {
	if merchantID == "" {
		return Store{}, fmt.Errorf("%w: no merchant", ErrInvalid)
	}
	name, err := cleanName("name", name)
	if err != nil {
		return Store{}, err
	}
	if !payswitch.ValidMerchantCode(till) {
		return Store{}, fmt.Errorf("%w: till: 3 to 12 digits", ErrInvalid)
	}
	if msisdn != "" {
		if msisdn, err = s.normalize(msisdn); err != nil {
			return Store{}, fmt.Errorf("%w: msisdn: not a phone number", ErrInvalid)
		}
	}
	now := s.opts.Now().UTC()
	st := Store{ID: newStoreID(), Merchant: merchantID, Name: name, Till: till, MSISDN: msisdn,
		Status: StoreOpen, CreatedAt: now, UpdatedAt: now}
	err = s.db.Write(ctx, func(tx store.Tx) error {
		if err := lockMerchant(ctx, s.db, tx, "stores", merchantID); err != nil {
			return err
		}
		var n int
		var taken bool
		if err := tx.QueryRowContext(ctx, `SELECT
				(SELECT count(*) FROM stores WHERE merchant_id = ?1),
				EXISTS (SELECT 1 FROM stores WHERE till = ?2) OR EXISTS (SELECT 1 FROM accounts WHERE code = ?2)`,
			merchantID, till).Scan(&n, &taken); err != nil {
			return fmt.Errorf("merchant: read stores: %w", err)
		}
		switch {
		case taken:
			return fmt.Errorf("%w: %s is already a till or a merchant code", ErrTillTaken, till)
		case n >= s.opts.MaxStores:
			return fmt.Errorf("%w: a merchant may have %d stores, closed ones included", ErrLimit, s.opts.MaxStores)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO stores (`+storeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			st.ID, st.Merchant, st.Name, st.Till, st.MSISDN, st.Status, micros(now), micros(now))
		switch {
		case store.IsUniqueViolation(err, "stores.msisdn"):
			return fmt.Errorf("%w: %s is another store's phone", ErrTaken, payswitch.Mask(msisdn))
		case err != nil && (strings.Contains(err.Error(), "till_taken") || store.IsUniqueViolation(err, "stores.till")):
			return fmt.Errorf("%w: %s is already a till or a merchant code", ErrTillTaken, till)
		case err != nil:
			return fmt.Errorf("merchant: insert store: %w", err)
		}
		return nil
	})
	if err != nil {
		return Store{}, err
	}
	return st, nil
}

// List returns merchantID's stores, oldest first, closed ones too.
func (s *Stores) List(ctx context.Context, merchantID string) ([]Store, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+storeColumns+` FROM stores
		WHERE merchant_id = ? ORDER BY created_at, id`, merchantID)
	if err != nil {
		return nil, fmt.Errorf("merchant: list stores: %w", err)
	}
	defer rows.Close()
	out := []Store{}
	for rows.Next() {
		st, err := scanStore(rows)
		if err != nil {
			return nil, fmt.Errorf("merchant: list stores: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("merchant: list stores: %w", err)
	}
	return out, nil
}

// Get returns merchantID's store id; another merchant's store is ErrNotFound, exactly as
// one that does not exist.
func (s *Stores) Get(ctx context.Context, merchantID, id string) (Store, error) {
	st, err := scanStore(s.db.Reader().QueryRowContext(ctx, `SELECT `+storeColumns+` FROM stores
		WHERE id = ? AND merchant_id = ?`, id, merchantID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Store{}, fmt.Errorf("%w: no store %s", ErrNotFound, id)
	case err != nil:
		return Store{}, fmt.Errorf("merchant: read store: %w", err)
	}
	return st, nil
}

// SetStatus opens or closes merchantID's store id. A closed store's till refuses
// payments from the next one on (the engine reads the status in each payment's
// transaction); its past payments stay its own. The till stays taken.
func (s *Stores) SetStatus(ctx context.Context, merchantID, id, status string) (Store, error) {
	if status != StoreOpen && status != StoreClosed {
		return Store{}, fmt.Errorf("%w: status: %q or %q", ErrInvalid, StoreOpen, StoreClosed)
	}
	err := s.db.Write(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE stores SET status = ?, updated_at = ?
			WHERE id = ? AND merchant_id = ? AND status <> ?`, status, micros(s.opts.Now()), id, merchantID, status)
		if err != nil {
			return fmt.Errorf("merchant: update store: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM stores WHERE id = ? AND merchant_id = ?`, id, merchantID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: no store %s", ErrNotFound, id)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return Store{}, err
	}
	return s.Get(ctx, merchantID, id)
}

// Till returns the store whose till is code, whatever its status (the engine keeps what
// never changes of it, and asks StoreOpen in each payment's transaction); none is
// payswitch.ErrUnknownTill.
func (s *Stores) Till(ctx context.Context, code string) (payswitch.Till, error) {
	return s.tillWhere(ctx, "till", code)
}

// TillByMSISDN returns the store whose phone is msisdn (international form); none is
// payswitch.ErrUnknownTill.
func (s *Stores) TillByMSISDN(ctx context.Context, msisdn string) (payswitch.Till, error) {
	if msisdn == "" {
		return payswitch.Till{}, payswitch.ErrUnknownTill
	}
	return s.tillWhere(ctx, "msisdn", msisdn)
}

func (s *Stores) tillWhere(ctx context.Context, column, value string) (payswitch.Till, error) {
	var t payswitch.Till
	var status string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT id, merchant_id, name, till, msisdn, status
		FROM stores WHERE `+column+` = ?`, value).Scan(&t.Store, &t.Merchant, &t.Name, &t.Code, &t.MSISDN, &status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return payswitch.Till{}, payswitch.ErrUnknownTill
	case err != nil:
		return payswitch.Till{}, fmt.Errorf("merchant: read till: %w", err)
	}
	t.Closed = status == StoreClosed
	return t, nil
}

// StoreOpen reports, in the transaction tx of a payment, whether store id is open; a
// store that does not exist is not.
func (s *Stores) StoreOpen(ctx context.Context, tx store.Tx, id string) (bool, error) {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM stores WHERE id = ?`, id).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("merchant: read store %s: %w", id, err)
	}
	return status == StoreOpen, nil
}
