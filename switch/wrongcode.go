package payswitch

// ProblemOriginLimited refuses, unchecked, a code that arrived through a callback origin
// which has used up its wrong codes for the number (see originLimit).
const ProblemOriginLimited Problem = "origin_limited"

func init() {
	DefaultTexts[string(ProblemOriginLimited)] = "Too many wrong codes came through this channel. " +
		"To confirm {id}, reply to our SMS with the code."
	DefaultTexts["locked_failed"] = "Too many wrong codes: {id} failed and {amount} is available again. " +
		"This number is locked until {until}. Not you? Call customer care."
}

// originLimit is how many wrong codes one callback origin may count against a number
// within the lock window; on is false when there is no such limit (the lock is off).
//
// A USSD or IVR callback names the number it speaks for on the gateway's word alone, so a
// forged callback could otherwise enter wrong codes for anyone's pending payment and lock
// that number, hour after hour. Capped below the lock (by default), one origin alone can
// never lock a number; and once it reaches its cap its further entries for that number
// are refused without being checked, so they give no more guesses either. The owner can
// still confirm by SMS, for which the carrier vouches.
func (f Fraud) originLimit() (limit int, on bool) {
	switch {
	case f.WrongCodesLock <= 0:
		return 0, false
	case f.WrongCodesPerOrigin > 0:
		return f.WrongCodesPerOrigin, true
	}
	return f.WrongCodesLock - 1, true
}
