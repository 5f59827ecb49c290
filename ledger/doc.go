// Package ledger is payswitch's double-entry ledger: accounts, holds, idempotent
// transfers and a hash-chained journal, in SQLite or PostgreSQL through the store
// package. It knows nothing of SMS, USSD or HTTP; the payment engine tells it what to
// move.
//
// The model follows TigerBeetle: two-phase transfers, posted and pending totals kept on
// every account, the idempotency key as the identity of a request, and history that is
// never edited.
//
// # Accounts and balances
//
// Each account keeps four totals, updated in the same transaction that writes the
// journal, so a balance is read from one row and never summed from entries:
//
//	posted    = credits_posted - debits_posted   money in the account
//	held      = debits_pending                   reserved by pending holds
//	available = posted - held                    what it may still spend
//
// Customer accounts (wallet, merchant, agent) never go below zero: available >= 0 is
// checked inside the writing transaction, and a CHECK constraint makes it a fact of the
// schema too; so does escrow, the system account that keeps guaranteed payments' money.
// The other system accounts (cash, fees, airtime_clearing, settlement) may: a deposit
// debits cash, which goes negative by what customers hold, and credits the wallet.
// Every transfer debits one account and credits another of the same currency by the same
// amount, so the posted balances of each currency always sum to zero, and its debits equal
// its credits (TrialBalance).
//
// A frozen or closed account can neither send nor receive (ErrAccountInactive); freezing
// can be undone, closing cannot and needs an empty account. System accounts are created
// by SystemAccount with the fixed id "<type>:<name>" and are always active.
//
// # Holds
//
// Hold reserves funds for a payment that waits for its code: the debit account's held
// total rises (so available drops) and its posted balance does not; no entry is written.
// Post books the hold as a transfer whose key is the hold's key (the entries are written
// then); Void releases it. Each hold settles once: posting twice returns the same
// transfer, voiding twice the same hold, posting a voided hold is ErrHoldVoided and
// voiding a posted one ErrHoldPosted. The credit account's incoming pending total is kept
// too, but does not count as available until posted.
//
// # Idempotency
//
// Every transfer and hold carries a key, such as "<payment id>:<step>", that is UNIQUE in
// the schema and looked up in the writing transaction. The same request again returns
// the first result and writes nothing, so a retry after a crash or a timeout is harmless;
// the same key with other accounts, amount, kind or payment id is ErrIdempotencyConflict.
// Transfers and holds share one key space. Corrections are new transfers: Reverse books
// the opposite transfer, kind "reversal", linked to the original by Reverses, at most once
// per original.
//
// # Journal
//
// Each transfer appends two entries, its debit then its credit, with consecutive seqs
// (gapless from 1), the account's posted balance after the entry, and a hash that chains
// each entry to the one before (EntryHash; the first links to GenesisHash). Triggers
// refuse any UPDATE or DELETE of entries and transfers. The journal's time never runs
// backwards, even if the clock does, so seq order is time order. Transfer ids ("TR" and
// 12 letters or digits) sort by the time they were made, so that the journal's indexes
// grow at their end. Verify walks the chain and recomputes every balance from it; the
// auditor export publishes the same chain. Every transfer the ledger returns carries
// the balances its two entries recorded (DebitBalanceAfter, CreditBalanceAfter), so that
// a receipt needs no second read of the accounts.
//
// # Transactions and batches
//
// On SQLite all writes go through the store's single writer, so the checks and the
// writes of one operation never interleave with another's. On PostgreSQL, where several
// processes book at once, each operation first locks what it checks (its key, the hold
// it settles, its accounts in id order, and last the journal's head, a row that
// serialises appends to the chain) and then runs the same reads and checks; see
// postgres.go and schema_postgres.go. In(tx) gives the ledger inside a caller's
// store.Write, so that the engine commits a payment's state and its ledger effect
// together; each Tx method is atomic and changes nothing when it fails, so the caller may
// go on in the same transaction. An operation reads everything it checks with one
// statement (its accounts, what its key names, the journal's head) and decides before it
// writes; a refused or repeated request has therefore nothing to undo and costs that one
// read. Only an operation about to write more than one statement takes a savepoint, just
// before its first write, so that a write failing after another (an I/O error, say) is
// undone. A hold is six statements, posting it eight, a transfer seven. The Ledger methods
// of the same names run their own Write, whose rollback needs no savepoint of theirs.
//
// TransferBatch books many transfers with one durable commit; each request succeeds or
// fails on its own and sees the effects of the ones before it, exactly as if Transfer
// booked them one after another in one transaction, except that they share one journal
// time. The batch reads its accounts, what its keys name and the journal's head with a
// few statements, decides every request in memory in order (running balances,
// idempotency within the batch and against the journal, the hash chain), and writes the
// transfers and entries with multi-row INSERTs and each account once with its summed
// change: a batch of 500 is eight to ten statements. A refused request was never
// written, so it needs nothing undone. Should a statement fail anyway, the batch is
// rolled back to its savepoint and run again one request at a time, each in a savepoint
// of its own, so that only the failing request fails.
package ledger
