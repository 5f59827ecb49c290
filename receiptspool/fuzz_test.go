package receiptspool

import (
	"reflect"
	"testing"
)

// A segment file is read back at every start; one a damaged disk or another program
// wrote over may hold anything. Reading it never panics, and every record it gives back
// is one the spool can write and read again as it is: a receipt or an MO, whole.
func FuzzReadRecords(f *testing.F) {
	var good []byte
	good = appendEntry(good, entry{r: receipt("m1")})
	good = appendEntry(good, entry{mo: &MO{Link: "smsc-a", From: "254700000001", To: "55500", Text: "sealed\x00text"}})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		got := readRecords(data)
		var again []byte
		for _, e := range got {
			again = appendEntry(again, e)
		}
		if back := readRecords(again); len(got) > 0 && !reflect.DeepEqual(back, got) {
			t.Fatalf("records %+v read back as %+v once written again", got, back)
		}
		// The payload's own decoding, which a record's check guards and a fuzzer
		// rarely gets past: the same, on data taken as a payload of a size a record
		// may have.
		if e, ok := decodePayload(data); ok && len(data) <= maxPayload {
			if back := readRecords(appendEntry(nil, e)); len(back) != 1 || !reflect.DeepEqual(back[0], e) {
				t.Fatalf("payload %x decoded to %+v, read back as %+v", data, e, back)
			}
		}
	})
}
