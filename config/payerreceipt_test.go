package config

import (
	"strings"
	"testing"
)

// smpp.payer_receipt_dlr is true unless set false; anything but a bool is refused by
// its path.
func TestPayerReceiptDLR(t *testing.T) {
	c := mustParse(t, minimal, nil)
	if !c.SMPP.PayerReceiptDLR {
		t.Fatal("payer_receipt_dlr left out is false, want true")
	}
	c = mustParse(t, minimal+"\nsmpp:\n  payer_receipt_dlr: false\n", nil)
	if c.SMPP.PayerReceiptDLR {
		t.Fatal("payer_receipt_dlr: false reads true")
	}
	_, err := Parse([]byte(minimal+"\nsmpp:\n  payer_receipt_dlr: sometimes\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "smpp.payer_receipt_dlr") {
		t.Fatalf("err = %v, want one naming smpp.payer_receipt_dlr", err)
	}
}
