// Package airtime is the switch's client for the carriers' airtime APIs (contract §7).
//
// A top-up is sent as POST <url> with
//
//	{"reference": "<payment id>", "msisdn": "...", "amount": N, "currency": "KES"}
//
// and Authorization: Bearer <token>. The carrier answers {"status": "success",
// "carrier_reference": "..."} or {"status": "failed", "reason": "..."}, and
// GET <url>/<reference> answers the same shapes for an earlier request (404: never seen).
// The carrier treats a repeated reference as the same request, so a POST may be sent
// again at any time without crediting twice; that is what makes every retry here safe.
//
// # The one rule
//
// Failed returns the customer's money, Success keeps it. So Credit and Resolve never
// report Failed while the carrier may have credited, and never report Success unless the
// carrier said "success". Everything in between is Unknown: the engine keeps the payment
// topup_pending and asks again later with Resolve.
//
// # How answers are read
//
// To a POST:
//
//   - 2xx with {"status": "success"}: Success. With {"status": "failed"}: Failed.
//     With anything else (broken JSON, no status, an unknown status, a body over 64 KiB,
//     a "reference" field naming another request): trouble.
//   - 400, 401, 403, 404, 405, 410, 411, 413, 414, 415, 422: Failed, unless the body says
//     "success" (a contradiction: trouble). The carrier refused the request before acting on it (a malformed request, a wrong URL, a rejected token), so
//     nothing was credited and the money may go back. A 401 or 403 is also logged as an
//     error: the token in the configuration is wrong, and every top-up will fail until an
//     operator fixes it. Returning the money at once was preferred to holding customers'
//     money for an operator's mistake.
//   - Other 4xx (408, 409, 423, 425, 429, …) and a failed body that comes with them:
//     trouble. 409 in particular is how some carriers say "this reference is in progress"
//     or "duplicate", which is no refusal at all.
//   - 3xx: trouble (redirects are never followed: a redirected POST may become a GET).
//   - 5xx, a timeout, a transport error: trouble.
//
// To a lookup (GET): 2xx with a valid body is Success or Failed, 404 means the carrier
// never saw the reference, and everything else is trouble (a 401 on a lookup says nothing
// about what became of the POST).
//
// A Failed answer is believed at once only for the first POST of a Credit. A failed
// answer to a retry, or to Resolve's re-send, is checked with a lookup first, because a
// carrier that wrongly answers a duplicate reference with "failed" would otherwise make
// the switch return money for airtime it has credited. If that lookup finds no record,
// the refusal stands unless an earlier POST of the same call had no answer (it may still
// be on its way to the carrier): then the result is Unknown.
//
// # Circuit breaker
//
// Each carrier has a breaker. After 5 consecutive faults (timeouts, transport errors,
// 5xx, 408, 429, unreadable 2xx answers) it opens for 30 s: calls return Unknown with
// Reason "carrier unavailable (circuit open)" without a request. Then one trial request is
// let through (half-open); any answer from the carrier closes the breaker, another fault
// opens it for 30 s more. Definite answers, including "failed", are not faults.
//
// # Metrics
//
//   - payswitch_airtime_requests_total{carrier,outcome}: results of Credit and Resolve
//     (outcome success, failed or unknown).
//   - payswitch_airtime_request_duration_seconds{carrier}: each HTTP exchange with the
//     carrier, POST or GET, including those that time out.
//   - payswitch_airtime_circuit_open{carrier}: 1 while the breaker is open or half-open.
package airtime
