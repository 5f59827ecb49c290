package ivr

import payswitch "github.com/payswitch/payswitch/switch"

// The tariff's fee (contract section 14) is spoken as the SMS names it: a payment with
// a fee is said with the "_fee" variant of its text (code_sent_fee, success_fee, ...),
// which names {fee}; a free payment keeps the plain text.

// withFee is key's "_fee" variant for p when p has a fee and the texts have that
// variant; else key.
func (s *Service) withFee(key string, p *payswitch.Payment) string {
	if p == nil || p.Fee == 0 || !s.texts.Has(key+"_fee") {
		return key
	}
	return key + "_fee"
}
