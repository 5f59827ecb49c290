package payswitch

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxReason bounds an operator's or a merchant's reason: it is for people reading a
// payment's or an account's history, and the console's forms say 200.
const maxReason = 200

// checkReason is the one rule for the reasons given with an operator's change (a
// reversal, a freeze, a tier, an escrow settlement) and a merchant's refund: printable,
// at most maxReason characters, and not empty where required. It returns the reason
// trimmed.
func checkReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "" && required:
		return "", fmt.Errorf("%w: reason: 1 to %d printable characters", ErrInvalid, maxReason)
	case utf8.RuneCountInString(reason) > maxReason || !printable(reason):
		if required {
			return "", fmt.Errorf("%w: reason: 1 to %d printable characters", ErrInvalid, maxReason)
		}
		return "", fmt.Errorf("%w: reason: up to %d printable characters", ErrInvalid, maxReason)
	}
	return reason, nil
}
