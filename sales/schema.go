package sales

import "github.com/payswitch/payswitch/store"

// Schema holds sales_hourly: each merchant's takings per UTC hour and store, kept by
// triggers on the ledger's entries in the transaction that books them, so that a month
// of a busy merchant is a few hundred rows to read rather than every entry. It needs the
// ledger's and the payments' schemas opened before it (as serve does), and it reads
// their tables: the trigger is the one place where a ledger entry meets the store of
// its payment, and it keeps nothing the ledger does not (Report can always recompute
// from the ledger, and does for what the hours cannot answer).
//
// An hour is the first 13 characters of an entry's time (ledger.TimeLayout, UTC):
// "2026-12-01T09". An entry counts when its account is a merchant's and its transfer is
// a merchant_payment or escrow_release credit (gross, one payment) or a refund or
// reversal debit (refunds), under the store of its payment ("main" for none). The
// conditions are ORs, not IN lists, for the reason of ledger migration 3.
//
// Since migration 2 the triggers are on transfers, not entries: a transfer carries
// everything an entry's trigger looked up (its kind, both accounts, the amount, the
// payment and the same journal time), so each transfer runs one trigger whose WHEN
// clause settles most of them by kind alone, where each entry ran one that looked its
// transfer up. A rebuild of the transfers table (a future ledger migration that copies
// it, as migration 4 did) drops these triggers with it: such a migration must be
// followed by this schema's triggers again.
var Schema = store.Schema{Component: "sales", Migrations: []string{migrationHourly, migrationOnTransfers}, Postgres: postgresMigrations}

const migrationHourly = `
CREATE TABLE sales_hourly (
	merchant_id TEXT NOT NULL,
	hour        TEXT NOT NULL,
	store       TEXT NOT NULL,
	payments    INTEGER NOT NULL DEFAULT 0,
	gross       INTEGER NOT NULL DEFAULT 0,
	refunds     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (merchant_id, hour, store)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER sales_hourly_gross AFTER INSERT ON entries
WHEN NEW.direction = 'C' AND NEW.payment_id <> ''
BEGIN
	INSERT INTO sales_hourly (merchant_id, hour, store, payments, gross)
	SELECT NEW.account_id, substr(NEW.time, 1, 13),
		COALESCE((SELECT NULLIF(p.store, '') FROM payments p WHERE p.id = NEW.payment_id), 'main'), 1, NEW.amount
	FROM transfers t
	WHERE t.id = NEW.transfer_id AND (t.kind = 'merchant_payment' OR t.kind = 'escrow_release')
		AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id AND a.type = 'merchant')
	ON CONFLICT (merchant_id, hour, store) DO UPDATE SET payments = payments + 1, gross = gross + excluded.gross;
END;

CREATE TRIGGER sales_hourly_refunds AFTER INSERT ON entries
WHEN NEW.direction = 'D' AND NEW.payment_id <> ''
BEGIN
	INSERT INTO sales_hourly (merchant_id, hour, store, refunds)
	SELECT NEW.account_id, substr(NEW.time, 1, 13),
		COALESCE((SELECT NULLIF(p.store, '') FROM payments p WHERE p.id = NEW.payment_id), 'main'), NEW.amount
	FROM transfers t
	WHERE t.id = NEW.transfer_id AND (t.kind = 'refund' OR t.kind = 'reversal')
		AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id AND a.type = 'merchant')
	ON CONFLICT (merchant_id, hour, store) DO UPDATE SET refunds = refunds + excluded.refunds;
END;

-- What was booked before the table existed.
INSERT INTO sales_hourly (merchant_id, hour, store, payments, gross, refunds)
SELECT e.account_id, substr(e.time, 1, 13), COALESCE(NULLIF(p.store, ''), 'main'),
	SUM(CASE WHEN e.direction = 'C' THEN 1 ELSE 0 END),
	SUM(CASE WHEN e.direction = 'C' THEN e.amount ELSE 0 END),
	SUM(CASE WHEN e.direction = 'D' THEN e.amount ELSE 0 END)
FROM entries e
	JOIN transfers t ON t.id = e.transfer_id
	JOIN accounts a ON a.id = e.account_id AND a.type = 'merchant'
	LEFT JOIN payments p ON p.id = e.payment_id
WHERE e.payment_id <> '' AND (
	(e.direction = 'C' AND (t.kind = 'merchant_payment' OR t.kind = 'escrow_release')) OR
	(e.direction = 'D' AND (t.kind = 'refund' OR t.kind = 'reversal')))
GROUP BY 1, 2, 3;
`

// migrationOnTransfers moves the two triggers from entries to transfers (see Schema).
// The hours already counted stay as they are: the new triggers count what is booked
// from now on exactly as the old ones did.
const migrationOnTransfers = `
DROP TRIGGER sales_hourly_gross;
DROP TRIGGER sales_hourly_refunds;

CREATE TRIGGER sales_hourly_gross AFTER INSERT ON transfers
WHEN (NEW.kind = 'merchant_payment' OR NEW.kind = 'escrow_release') AND NEW.payment_id <> ''
BEGIN
	INSERT INTO sales_hourly (merchant_id, hour, store, payments, gross)
	SELECT NEW.credit, substr(NEW.time, 1, 13),
		COALESCE((SELECT NULLIF(p.store, '') FROM payments p WHERE p.id = NEW.payment_id), 'main'), 1, NEW.amount
	WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.credit AND a.type = 'merchant')
	ON CONFLICT (merchant_id, hour, store) DO UPDATE SET payments = payments + 1, gross = gross + excluded.gross;
END;

CREATE TRIGGER sales_hourly_refunds AFTER INSERT ON transfers
WHEN (NEW.kind = 'refund' OR NEW.kind = 'reversal') AND NEW.payment_id <> ''
BEGIN
	INSERT INTO sales_hourly (merchant_id, hour, store, refunds)
	SELECT NEW.debit, substr(NEW.time, 1, 13),
		COALESCE((SELECT NULLIF(p.store, '') FROM payments p WHERE p.id = NEW.payment_id), 'main'), NEW.amount
	WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.debit AND a.type = 'merchant')
	ON CONFLICT (merchant_id, hour, store) DO UPDATE SET refunds = refunds + excluded.refunds;
END;
`
