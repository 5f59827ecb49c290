package payswitch

// ahead is a part of a command's snapshot worked out before its write, off the store's
// single writer (a read from the reader pool, an HMAC, a random draw), with the key by
// which the write confirms that it still holds: the applier takes the value only when
// the key it reads inside the write is the one the value was worked out for, and
// otherwise works the part out inside the write. This is the only way anything read or
// computed outside a write enters a decision, and a part may go ahead only when
// everything of it that the key does not pin down is read again inside the write.
//
// The parts that go ahead, and why their keys pin them down:
//   - a confirmation's waiting payments (its own and a merchant's request) with their
//     items, and the code digested for each one's binding, each keyed by the payment's
//     ID (confirmAhead): while a payment waits for its code only its deadline (and
//     updated_at) change, and those the write reads; its items never change.
//   - a request's draft (draft, request.go), which needs no key and so is not an ahead
//     value: the accounts its numbers and merchant code name, whose ids, types and names
//     never change once they exist (accounts are neither deleted nor renamed), and the
//     new payment with its ID, code and code message, which nothing else can know of.
//     The accounts are kept in memory (payeeCache), the payer's too: its status is read
//     in the write with the number's state. Everything that can change (status, funds,
//     the waiting payment, the lock, the daily total) is decided in the write, the
//     payee's status and the funds through the ledger's hold (holdStep). A BUY's items
//     are priced from the catalogue here too (catalogue data, like the payee's name): the
//     price bought at is the one the code was drawn for and the item keeps.
//   - a merchant's request to pay's draft (draftPayRequest), likewise: the merchant's
//     account, the items priced, the payment with its code and SMS. The write reads
//     the statuses, the waiting request, STOP and the counts.
type ahead[T any] struct {
	key   string
	value T
}

// confirmed is a's value when key is the key it was worked out for.
func (a *ahead[T]) confirmed(key string) (T, bool) {
	if a == nil || a.key != key {
		var zero T
		return zero, false
	}
	return a.value, true
}
