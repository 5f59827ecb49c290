package merchant

// postgresMigrations are the package's tables on PostgreSQL (Schema.Postgres), as
// SQLite's three migrations leave them. Times stay Unix microseconds (BIGINT); text
// columns are COLLATE "C", so that codes and ids sort by bytes whatever the database's
// locale (List orders products by length(code), code).
//
// The tills' triggers are plpgsql functions with SQLite's messages. On PostgreSQL two
// transactions would not see each other's rows: a store and an account given the same
// code at once would both pass. So each trigger first takes a transaction lock on the
// code (tillLockSQL), then looks: the second waits for the first to commit, then finds
// its row. A till taken twice is refused by the UNIQUE key as on SQLite.
//
// The caps (keys, products, stores per merchant) are counted, then written: Keys,
// Catalog and Stores take a transaction lock on the merchant first (lockMerchant), so
// that two nodes do not both count one less than the cap.
var postgresMigrations = []string{`
CREATE TABLE merchant_keys (
	id          TEXT COLLATE "C" PRIMARY KEY,
	merchant_id TEXT COLLATE "C" NOT NULL,
	name        TEXT NOT NULL,
	digest      BYTEA NOT NULL,
	created_at  BIGINT NOT NULL,
	revoked_at  BIGINT
);
CREATE UNIQUE INDEX merchant_keys_digest ON merchant_keys (digest);
CREATE INDEX merchant_keys_by_merchant ON merchant_keys (merchant_id, created_at);

CREATE TABLE products (
	merchant_id TEXT COLLATE "C" NOT NULL,
	code        TEXT COLLATE "C" NOT NULL,
	name        TEXT NOT NULL,
	price       BIGINT NOT NULL CHECK (price > 0),
	created_at  BIGINT NOT NULL,
	retired_at  BIGINT,
	PRIMARY KEY (merchant_id, code)
);

CREATE TABLE merchant_escrow (
	merchant_id TEXT COLLATE "C" PRIMARY KEY,
	since       BIGINT NOT NULL
);

CREATE TABLE stores (
	id          TEXT COLLATE "C" PRIMARY KEY,
	merchant_id TEXT COLLATE "C" NOT NULL,
	name        TEXT NOT NULL,
	till        TEXT COLLATE "C" NOT NULL UNIQUE,
	msisdn      TEXT COLLATE "C" NOT NULL DEFAULT '',
	status      TEXT COLLATE "C" NOT NULL CHECK (status = 'open' OR status = 'closed'),
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE INDEX stores_by_merchant ON stores (merchant_id, created_at);
CREATE UNIQUE INDEX stores_msisdn ON stores (msisdn) WHERE msisdn <> '';

CREATE FUNCTION stores_till_not_a_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('merchant till ' || NEW.till, 0));
	IF EXISTS (SELECT 1 FROM accounts WHERE code = NEW.till) THEN
		RAISE EXCEPTION 'merchant: till_taken: the till is a merchant code';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER stores_till_not_a_code BEFORE INSERT ON stores
FOR EACH ROW EXECUTE FUNCTION stores_till_not_a_code();

CREATE FUNCTION stores_till_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'merchant: a till never changes';
END $$;
CREATE TRIGGER stores_till_fixed BEFORE UPDATE OF till ON stores
FOR EACH ROW WHEN (NEW.till <> OLD.till) EXECUTE FUNCTION stores_till_fixed();

CREATE FUNCTION accounts_code_not_a_till() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('merchant till ' || NEW.code, 0));
	IF EXISTS (SELECT 1 FROM stores WHERE till = NEW.code) THEN
		RAISE EXCEPTION 'merchant: till_taken: the code is a store''s till';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER accounts_code_not_a_till BEFORE INSERT ON accounts
FOR EACH ROW WHEN (NEW.code IS NOT NULL) EXECUTE FUNCTION accounts_code_not_a_till();
CREATE TRIGGER accounts_code_change_not_a_till BEFORE UPDATE OF code ON accounts
FOR EACH ROW WHEN (NEW.code IS NOT NULL AND NEW.code IS DISTINCT FROM OLD.code)
EXECUTE FUNCTION accounts_code_not_a_till();
`}
