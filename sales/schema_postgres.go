package sales

// postgresMigrations are sales_hourly on PostgreSQL (Schema.Postgres): the table as
// SQLite's migration leaves it, kept by one trigger function AFTER INSERT ON entries
// that does what SQLite's two triggers do. The ledger keeps entry times as text in
// ledger.TimeLayout on PostgreSQL too, so an hour is the same substr of it. Like
// SQLite's, it needs the ledger's tables and the payments table (package switch's)
// before it: the backfill reads them now, the trigger when each entry is booked.
//
// Concurrent appends need nothing more: the ledger serialises them on its head, and an
// upsert on the hour's row (INSERT ... ON CONFLICT DO UPDATE) adds to the committed row
// after waiting for any other writer of it.
var postgresMigrations = []string{postgresMigrationHourly}

const postgresMigrationHourly = `
CREATE TABLE sales_hourly (
	merchant_id TEXT COLLATE "C" NOT NULL,
	hour        TEXT COLLATE "C" NOT NULL,
	store       TEXT COLLATE "C" NOT NULL,
	payments    BIGINT NOT NULL DEFAULT 0,
	gross       BIGINT NOT NULL DEFAULT 0,
	refunds     BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (merchant_id, hour, store)
);

CREATE FUNCTION sales_hourly_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.direction = 'C' THEN
		INSERT INTO sales_hourly (merchant_id, hour, store, payments, gross)
		SELECT NEW.account_id, substr(NEW.time, 1, 13),
			COALESCE((SELECT NULLIF(p.store, '') FROM payments p WHERE p.id = NEW.payment_id), 'main'), 1, NEW.amount
		FROM transfers t
		WHERE t.id = NEW.transfer_id AND (t.kind = 'merchant_payment' OR t.kind = 'escrow_release')
			AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id AND a.type = 'merchant')
		ON CONFLICT (merchant_id, hour, store) DO UPDATE
			SET payments = sales_hourly.payments + 1, gross = sales_hourly.gross + excluded.gross;
	ELSE
		INSERT INTO sales_hourly (merchant_id, hour, store, refunds)
		SELECT NEW.account_id, substr(NEW.time, 1, 13),
			COALESCE((SELECT NULLIF(p.store, '') FROM payments p WHERE p.id = NEW.payment_id), 'main'), NEW.amount
		FROM transfers t
		WHERE t.id = NEW.transfer_id AND (t.kind = 'refund' OR t.kind = 'reversal')
			AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id AND a.type = 'merchant')
		ON CONFLICT (merchant_id, hour, store) DO UPDATE
			SET refunds = sales_hourly.refunds + excluded.refunds;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER sales_hourly_count AFTER INSERT ON entries
	FOR EACH ROW WHEN (NEW.payment_id <> '') EXECUTE FUNCTION sales_hourly_count();

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
