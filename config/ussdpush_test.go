package config

import (
	"strings"
	"testing"
)

// smpp.links[].ussd_push (contract section 10) is false unless set, true on the shipped
// demo link so that a newcomer sees a request pushed to the phone, and a boolean.
func TestLinkUSSDPush(t *testing.T) {
	c, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.SMPP.Links[0].USSDPush {
		t.Fatal("the shipped demo link does not push requests as USSD")
	}
	c = mustParse(t, minimal+`
smpp:
  links:
    - {name: a, address: "10.0.0.1:2775", system_id: ps}
    - {name: b, address: "10.0.0.2:2775", system_id: ps, ussd_push: true}
`, nil)
	if c.SMPP.Links[0].USSDPush || !c.SMPP.Links[1].USSDPush {
		t.Fatalf("ussd_push %v %v, want false (left out) and true", c.SMPP.Links[0].USSDPush, c.SMPP.Links[1].USSDPush)
	}
	for _, bad := range []string{"yes", `"on"`, "1.0", "[true]"} {
		_, err := Parse([]byte(minimal+`
smpp:
  links:
    - {name: a, address: "10.0.0.1:2775", system_id: ps, ussd_push: `+bad+`}
`), nil)
		if err == nil || !strings.Contains(err.Error(), "smpp.links[0].ussd_push") {
			t.Errorf("ussd_push: %s: %v, want an error naming the key", bad, err)
		}
	}
}
