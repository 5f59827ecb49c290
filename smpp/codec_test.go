package smpp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	gsm "github.com/fiorix/go-smpp/smpp/encoding"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
)

// decodeSegments decodes and reassembles segments as a receiving phone would.
func decodeSegments(t *testing.T, segs []Segment) string {
	t.Helper()
	r := NewReassembler(time.Minute)
	now := time.Unix(1700000000, 0)
	var text string
	var complete int
	for _, s := range segs {
		p, err := Decode(s.DataCoding, s.ESMClass, s.ShortMessage, nil)
		if err != nil {
			t.Fatalf("Decode(%x): %v", s.ShortMessage, err)
		}
		if got, ok := r.Add("254700000001", p, now); ok {
			text = got
			complete++
		}
	}
	if complete != 1 {
		t.Fatalf("completed %d times, want once", complete)
	}
	return text
}

func TestEncodeRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		coding uint8
		parts  int
	}{
		{"empty", "", CodingGSM7, 1},
		{"plain command", "PAY 55501 150.50 INV-7", CodingGSM7, 1},
		{"extension table", "€ [ ] { } ~ \\ ^ | and a form feed \f", CodingGSM7, 1},
		{"gsm specials", "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà", CodingGSM7, 1},
		{"swahili with curly quote", "Umelipa KES 1,500.00 kwa “Mama Mboga”", CodingUCS2, 1},
		{"emoji surrogate pair", "Asante 🙏🏽 sana", CodingUCS2, 1},
		{"cyrillic", "Привет", CodingUCS2, 1},
		{"exactly 160 septets", strings.Repeat("a", 160), CodingGSM7, 1},
		{"161 septets", strings.Repeat("a", 161), CodingGSM7, 2},
		{"159 plus escape is 161 septets", strings.Repeat("a", 159) + "€", CodingGSM7, 2},
		{"158 plus escape is 160 septets", strings.Repeat("a", 158) + "€", CodingGSM7, 1},
		{"306 septets in two parts", strings.Repeat("b", 306), CodingGSM7, 2},
		{"307 septets in three parts", strings.Repeat("b", 307), CodingGSM7, 3},
		{"exactly 70 UCS-2", strings.Repeat("ж", 70), CodingUCS2, 1},
		{"71 UCS-2", strings.Repeat("ж", 71), CodingUCS2, 2},
		{"134 UCS-2 in two parts", strings.Repeat("ж", 134), CodingUCS2, 2},
		{"135 UCS-2 in three parts", strings.Repeat("ж", 135), CodingUCS2, 3},
		{"long emoji text", strings.Repeat("🙂x", 60), CodingUCS2, 3},
		{"long with escapes", strings.Repeat("{a}", 80), CodingGSM7, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			segs := Encode(tc.text, 42)
			if len(segs) != tc.parts {
				t.Fatalf("got %d parts, want %d", len(segs), tc.parts)
			}
			for i, s := range segs {
				if s.DataCoding != tc.coding {
					t.Errorf("part %d coding 0x%02x, want 0x%02x", i, s.DataCoding, tc.coding)
				}
				if len(s.ShortMessage) > 140 && tc.coding == CodingUCS2 {
					t.Errorf("part %d has %d octets, more than 140", i, len(s.ShortMessage))
				}
				if tc.coding == CodingGSM7 && len(segs) > 1 && len(s.ShortMessage)-6 > 153 {
					t.Errorf("part %d has %d septets, more than 153", i, len(s.ShortMessage)-6)
				}
				if len(segs) == 1 && s.ESMClass != 0 {
					t.Errorf("lone message has esm_class 0x%02x", s.ESMClass)
				}
				if len(segs) > 1 {
					want := []byte{0x05, 0x00, 0x03, 42, byte(len(segs)), byte(i + 1)}
					if s.ESMClass != ESMClassUDHI || !bytes.Equal(s.ShortMessage[:6], want) {
						t.Errorf("part %d esm 0x%02x header % x, want 0x40 and % x", i, s.ESMClass, s.ShortMessage[:6], want)
					}
				}
			}
			if got := decodeSegments(t, segs); got != tc.text {
				t.Fatalf("round trip gave %q, want %q", got, tc.text)
			}
		})
	}
}

func TestEncodeNeverSplitsACharacter(t *testing.T) {
	tests := []struct {
		name string
		text string
	}{
		// The escape of '€' would be septet 153 of the first part.
		{"escape at the boundary", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 20)},
		// The high surrogate of the emoji would be unit 67 of the first part.
		{"surrogate at the boundary", strings.Repeat("ж", 66) + "🙂" + strings.Repeat("ж", 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			segs := Encode(tc.text, 1)
			if len(segs) != 2 {
				t.Fatalf("got %d parts, want 2", len(segs))
			}
			for i, s := range segs {
				// Every part must decode on its own to valid text: no dangling escape
				// (which would decode as a space) and no lone surrogate.
				p, err := Decode(s.DataCoding, s.ESMClass, s.ShortMessage, nil)
				if err != nil {
					t.Fatal(err)
				}
				if strings.ContainsRune(p.Text, utf8.RuneError) || strings.Contains(p.Text, " ") {
					t.Errorf("part %d decodes to %q: a character was cut", i, p.Text)
				}
			}
			if got := decodeSegments(t, segs); got != tc.text {
				t.Fatalf("round trip gave %q", got)
			}
		})
	}
}

func TestEncodeSeptetsAreGSM(t *testing.T) {
	segs := Encode("@€a", 0)
	want := []byte{0x00, 0x1B, 0x65, 0x61}
	if !bytes.Equal(segs[0].ShortMessage, want) {
		t.Fatalf("got % x, want % x", segs[0].ShortMessage, want)
	}
	segs = Encode("🙂", 0)
	want = []byte{0xD8, 0x3D, 0xDE, 0x42}
	if !bytes.Equal(segs[0].ShortMessage, want) || segs[0].DataCoding != CodingUCS2 {
		t.Fatalf("got % x coding %d, want % x", segs[0].ShortMessage, segs[0].DataCoding, want)
	}
}

func TestEncodeCapsAt255Parts(t *testing.T) {
	segs := Encode(strings.Repeat("a", 153*300), 9)
	if len(segs) != 255 {
		t.Fatalf("got %d parts, want 255", len(segs))
	}
	if last := segs[254].ShortMessage; last[4] != 255 || last[5] != 255 {
		t.Fatalf("last part header % x", last[:6])
	}
}

func TestDecode(t *testing.T) {
	ucs2 := func(s string) []byte { return ucs2Bytes(s) }
	tests := []struct {
		name   string
		coding uint8
		esm    uint8
		sm     []byte
		sar    *SAR
		want   Part
	}{
		{"gsm plain", 0x00, 0, []byte("BAL"), nil, Part{Text: "BAL"}},
		{"gsm at sign and escapes", 0x00, 0, []byte{0x00, 0x1B, 0x65, 0x1B, 0x3C}, nil, Part{Text: "@€["}},
		{"gsm unknown escape gives base char", 0x00, 0, []byte{0x1B, 0x41}, nil, Part{Text: "A"}},
		{"gsm trailing escape", 0x00, 0, []byte{0x41, 0x1B}, nil, Part{Text: "A "}},
		{"gsm octet above 7 bits", 0x00, 0, []byte{0x41, 0xC8}, nil, Part{Text: "A\uFFFD"}},
		{"ia5", 0x01, 0, []byte("PAY 1 2"), nil, Part{Text: "PAY 1 2"}},
		{"latin-1", 0x03, 0, []byte{'c', 'a', 'f', 0xE9}, nil, Part{Text: "café"}},
		{"8-bit as latin-1", 0x04, 0, []byte{0xA3, '5'}, nil, Part{Text: "£5"}},
		{"binary as latin-1", 0x02, 0, []byte{'o', 'k'}, nil, Part{Text: "ok"}},
		{"ucs2", 0x08, 0, ucs2("Habari"), nil, Part{Text: "Habari"}},
		{"ucs2 emoji", 0x08, 0, ucs2("🙏🏽"), nil, Part{Text: "🙏🏽"}},
		{"ucs2 lone surrogate", 0x08, 0, []byte{0xD8, 0x3D, 0x00, 0x41}, nil, Part{Text: "\uFFFDA"}},
		{"class group gsm", 0xF0, 0, []byte("HELP"), nil, Part{Text: "HELP"}},
		{"class group 8-bit", 0xF4, 0, []byte("HELP"), nil, Part{Text: "HELP"}},
		{"general group ucs2 with class", 0x18, 0, ucs2("Jambo"), nil, Part{Text: "Jambo"}},
		{"udh 8-bit ref", 0x00, 0x40, append([]byte{5, 0, 3, 7, 2, 1}, "SEND "...), nil,
			Part{Text: "SEND ", Ref: 7, Total: 2, Seq: 1}},
		{"udh 16-bit ref", 0x08, 0x40, append([]byte{6, 8, 4, 0x12, 0x34, 3, 2}, ucs2("mbili")...), nil,
			Part{Text: "mbili", Ref: 0x1234, Total: 3, Seq: 2}},
		{"udh with port element first", 0x00, 0x40, append([]byte{11, 5, 4, 0, 1, 0, 2, 0, 3, 9, 2, 2}, "x"...), nil,
			Part{Text: "x", Ref: 9, Total: 2, Seq: 2}},
		{"udh without concatenation", 0x00, 0x40, append([]byte{6, 5, 4, 0, 1, 0, 2}, "hi"...), nil, Part{Text: "hi"}},
		{"udh seq beyond total is ignored", 0x00, 0x40, append([]byte{5, 0, 3, 7, 2, 3}, "x"...), nil, Part{Text: "x"}},
		{"udh zero total is ignored", 0x00, 0x40, append([]byte{5, 0, 3, 7, 0, 0}, "x"...), nil, Part{Text: "x"}},
		{"sar", 0x00, 0, []byte("part"), &SAR{Ref: 300, Total: 2, Seq: 2}, Part{Text: "part", Ref: 300, Total: 2, Seq: 2}},
		{"sar of one is whole", 0x00, 0, []byte("all"), &SAR{Ref: 1, Total: 1, Seq: 1}, Part{Text: "all"}},
		{"udh wins over sar", 0x00, 0x40, append([]byte{5, 0, 3, 7, 2, 1}, "u"...), &SAR{Ref: 1, Total: 3, Seq: 3},
			Part{Text: "u", Ref: 7, Total: 2, Seq: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.coding, tc.esm, tc.sm, tc.sar)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		coding uint8
		esm    uint8
		sm     []byte
		want   error
	}{
		{"odd ucs2", 0x08, 0, []byte{0x00, 0x41, 0x00}, ErrOddUCS2},
		{"udh flag on empty message", 0x00, 0x40, nil, ErrBadUDH},
		{"udh length beyond message", 0x00, 0x40, []byte{9, 0, 3, 1}, ErrBadUDH},
		{"element beyond header", 0x00, 0x40, []byte{3, 0, 3, 1, 'x'}, ErrBadUDH},
		{"truncated element", 0x00, 0x40, []byte{1, 0, 'x'}, ErrBadUDH},
		{"concatenation element of wrong size", 0x00, 0x40, []byte{4, 0, 2, 1, 1, 'x'}, ErrBadUDH},
		{"compressed general group", 0x20, 0, []byte("x"), ErrUnsupportedCoding},
		{"unknown coding", 0x05, 0, []byte("x"), ErrUnsupportedCoding},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.coding, tc.esm, tc.sm, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReassembler(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	part := func(seq uint8, text string) Part { return Part{Text: text, Ref: 5, Total: 3, Seq: seq} }

	t.Run("out of order with duplicates", func(t *testing.T) {
		r := NewReassembler(time.Minute)
		steps := []Part{part(3, "C"), part(1, "A"), part(3, "X"), part(2, "B")}
		for i, p := range steps {
			text, ok := r.Add("254700000001", p, t0)
			if last := i == len(steps)-1; ok != last {
				t.Fatalf("step %d complete=%v", i, ok)
			}
			if ok && text != "ABC" {
				t.Fatalf("got %q, want ABC (duplicate part must be ignored)", text)
			}
		}
		if r.Pending() != 0 {
			t.Fatalf("%d sets left after completion", r.Pending())
		}
	})

	t.Run("sets are per sender", func(t *testing.T) {
		r := NewReassembler(time.Minute)
		r.Add("254700000001", part(1, "A"), t0)
		r.Add("254700000002", part(2, "b"), t0)
		r.Add("254700000002", part(3, "c"), t0)
		if _, ok := r.Add("254700000001", part(2, "B"), t0); ok {
			t.Fatal("completed with another sender's parts")
		}
		if text, ok := r.Add("254700000002", part(1, "a"), t0); !ok || text != "abc" {
			t.Fatalf("got %q %v", text, ok)
		}
	})

	t.Run("whole message passes through", func(t *testing.T) {
		r := NewReassembler(time.Minute)
		if text, ok := r.Add("x", Part{Text: "BAL"}, t0); !ok || text != "BAL" {
			t.Fatalf("got %q %v", text, ok)
		}
	})

	t.Run("sweep drops only stale sets", func(t *testing.T) {
		r := NewReassembler(time.Minute)
		r.Add("old", part(1, "A"), t0)
		r.Add("new", part(1, "A"), t0.Add(50*time.Second))
		if n := r.Sweep(t0.Add(61 * time.Second)); n != 1 {
			t.Fatalf("swept %d, want 1", n)
		}
		if _, ok := r.Add("old", part(2, "B"), t0.Add(62*time.Second)); ok {
			t.Fatal("a swept set completed")
		}
		r.Add("new", part(2, "B"), t0.Add(62*time.Second))
		if text, ok := r.Add("new", part(3, "C"), t0.Add(62*time.Second)); !ok || text != "ABC" {
			t.Fatalf("got %q %v", text, ok)
		}
	})

	t.Run("take keeps the set until finish", func(t *testing.T) {
		r := NewReassembler(time.Minute)
		r.take("a", part(1, "A"), t0)
		r.take("a", part(2, "B"), t0)
		if _, ok, err := r.take("a", part(3, "C"), t0); !ok || err != nil {
			t.Fatalf("not complete: %v", err)
		}
		// The handler failed; the SMSC redelivers the last part.
		if text, ok, err := r.take("a", part(3, "C"), t0); !ok || err != nil || text != "ABC" {
			t.Fatalf("redelivery gave %q %v %v", text, ok, err)
		}
		r.finish("a", part(3, "C"))
		if sets, bytes := r.Held(); sets != 0 || bytes != 0 {
			t.Fatalf("finish left %d sets, %d bytes", sets, bytes)
		}
	})
}

// The caps of issue 17: whoever can send MO must not make the process hold what it
// likes. Each refusal leaves what is held unchanged, and room comes back.
func TestReassemblerCaps(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	t.Run("parts per message", func(t *testing.T) {
		r := NewReassembler(time.Minute)
		if _, _, err := r.take("a", Part{Text: "x", Ref: 1, Total: MaxConcatParts + 1, Seq: 1}, t0); !errors.Is(err, ErrTooManyParts) {
			t.Fatalf("a part of %d: %v", MaxConcatParts+1, err)
		}
		if _, _, err := r.take("a", Part{Text: "x", Ref: 1, Total: MaxConcatParts, Seq: 1}, t0); err != nil {
			t.Fatalf("a part of %d: %v", MaxConcatParts, err)
		}
	})
	t.Run("sets per sender", func(t *testing.T) {
		r := NewReassembler(time.Minute)
		for ref := range uint16(maxSetsPerSender) {
			if _, _, err := r.take("a", Part{Text: "x", Ref: ref, Total: 2, Seq: 1}, t0); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := r.take("a", Part{Text: "x", Ref: 999, Total: 2, Seq: 1}, t0); !errors.Is(err, ErrReassemblyFull) {
			t.Fatalf("one set too many: %v", err)
		}
		// Another sender is not affected; a part of a set already held still completes it.
		if _, _, err := r.take("b", Part{Text: "x", Ref: 999, Total: 2, Seq: 1}, t0); err != nil {
			t.Fatal(err)
		}
		if text, ok, err := r.take("a", Part{Text: "y", Ref: 0, Total: 2, Seq: 2}, t0); !ok || err != nil || text != "xy" {
			t.Fatalf("completing a held set: %q %v %v", text, ok, err)
		}
		// Expired sets make room at once, without waiting for Sweep.
		if _, _, err := r.take("a", Part{Text: "x", Ref: 999, Total: 2, Seq: 1}, t0.Add(2*time.Minute)); err != nil {
			t.Fatalf("after the timeout: %v", err)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		r := NewReassembler(time.Minute)
		big := strings.Repeat("z", 60<<10)
		refused := 0
		for i := range 200 {
			_, _, err := r.take(fmt.Sprint("254100", i), Part{Text: big, Ref: 7, Total: 2, Seq: 1}, t0)
			if errors.Is(err, ErrReassemblyFull) {
				refused++
			}
			if sets, bytes := r.Held(); bytes > maxReassemblyBytes || sets > maxReassemblySets {
				t.Fatalf("holding %d sets, %d bytes", sets, bytes)
			}
		}
		sets, bytes := r.Held()
		if refused == 0 || sets != 200-refused || bytes != sets*len(big) {
			t.Fatalf("refused %d, holding %d sets, %d bytes", refused, sets, bytes)
		}
		if n := r.Sweep(t0.Add(2 * time.Minute)); n != sets {
			t.Fatalf("swept %d of %d", n, sets)
		}
		if sets, bytes := r.Held(); sets != 0 || bytes != 0 {
			t.Fatalf("after the sweep: %d sets, %d bytes", sets, bytes)
		}
	})
}

func TestUCS2IsUTF16(t *testing.T) {
	text := "a🙂"
	b := ucs2Bytes(text)
	if len(b) != 2*len(utf16.Encode([]rune(text))) {
		t.Fatalf("got %d octets", len(b))
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte("PAY 55501 100"), uint16(0), uint8(0), uint8(0))
	f.Add(uint8(8), uint8(0x40), []byte{6, 8, 4, 1, 2, 2, 1, 0, 0x41}, uint16(0), uint8(0), uint8(0))
	f.Add(uint8(0), uint8(0x40), []byte{5, 0, 3, 1, 2, 1, 0x1B}, uint16(3), uint8(2), uint8(1))
	f.Add(uint8(3), uint8(0), []byte{0xE9, 0xFF}, uint16(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, coding, esm uint8, sm []byte, ref uint16, total, seq uint8) {
		p, err := Decode(coding, esm, sm, &SAR{Ref: ref, Total: total, Seq: seq})
		if err != nil {
			return
		}
		if !utf8.ValidString(p.Text) {
			t.Fatalf("invalid UTF-8 from % x", sm)
		}
		if p.Total > 1 && (p.Seq == 0 || p.Seq > p.Total) {
			t.Fatalf("impossible part %+v", p)
		}
		// Whatever decodes must also encode and decode back to the same text.
		segs := Encode(p.Text, 1)
		r := NewReassembler(time.Minute)
		for _, s := range segs {
			q, err := Decode(s.DataCoding, s.ESMClass, s.ShortMessage, nil)
			if err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			if text, ok := r.Add("f", q, time.Time{}); ok && text != p.Text && len(segs) < maxParts {
				t.Fatalf("re-encode gave %q, want %q", text, p.Text)
			}
		}
	})
}

func BenchmarkEncodeLongUCS2(b *testing.B) {
	text := strings.Repeat("Umelipa 🙏 ", 30)
	for b.Loop() {
		Encode(text, 1)
	}
}

func BenchmarkDecodeGSM(b *testing.B) {
	sm := []byte("PAY 55501 1500.00 INVOICE-778")
	for b.Loop() {
		if _, err := Decode(0, 0, sm, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// go-smpp encodes every character of the project's GSM 03.38 tables as those tables
// say: one septet, or the escape and one septet for the extension table.
func TestGSMEncodingMatchesTables(t *testing.T) {
	for i, r := range gsmBasic {
		if i == gsmEscape {
			continue
		}
		if got, ok := gsmSeptets(string(r)); !ok || !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("%q: % x %v, want %02x", r, got, ok, i)
		}
	}
	for b, r := range gsmExtension {
		if got, ok := gsmSeptets(string(r)); !ok || !bytes.Equal(got, []byte{gsmEscape, b}) {
			t.Errorf("%q: % x %v, want 1b %02x", r, got, ok, b)
		}
	}
	for _, r := range []rune{'`', 'ç', 'á', '\t', '🙂', utf8.RuneError} {
		if got, ok := gsmSeptets(string(r)); ok {
			t.Errorf("%q outside the alphabet encoded as % x", r, got)
		}
	}
	// Long texts with multi-byte runes: go-smpp's encoder counts runes where the
	// transformer contract wants bytes, which only transform.Bytes tolerates.
	long := strings.Repeat("é€£ ", 300)
	got, ok := gsmSeptets(long)
	if !ok || len(got) != 5*300 || decodeGSM(got) != long {
		t.Fatalf("long text: %d septets, %v", len(got), ok)
	}
}

// Why decoding stays the project's: go-smpp's decoder refuses whole messages that GSM
// 03.38 says to read (a trailing escape, an escape before a septet outside the
// extension table, an octet above 0x7F), which Decode reads.
func TestGoSMPPGSMDecoderRefusesWhatPhonesSend(t *testing.T) {
	for _, tc := range []struct {
		sm   []byte
		want string
	}{
		{[]byte{0x41, 0x1B}, "A "},
		{[]byte{0x1B, 0x41}, "A"},
		{[]byte{0x41, 0xC8}, "A\uFFFD"},
	} {
		if _, err := gsm.GSM7(false).NewDecoder().Bytes(tc.sm); err == nil {
			t.Errorf("go-smpp now decodes % x: reconsider using it", tc.sm)
		}
		if p, err := Decode(CodingGSM7, 0, tc.sm, nil); err != nil || p.Text != tc.want {
			t.Errorf("Decode(% x) = %q, %v, want %q", tc.sm, p.Text, err, tc.want)
		}
	}
}

// Why packed GSM is not taken from go-smpp: its round trip adds an '@' to a message of
// seven septets and loses an '@' that is the eighth septet of a group.
func TestGoSMPPPackedGSMMangles(t *testing.T) {
	for text, want := range map[string]string{"abcdefg": "abcdefg@", "abcdef1@h": "abcdef1h"} {
		packed, err := gsm.GSM7(true).NewEncoder().Bytes([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		got, err := gsm.GSM7(true).NewDecoder().Bytes(packed)
		if err != nil || string(got) != want {
			t.Errorf("go-smpp packed round trip of %q gave %q %v; expected its known %q", text, got, err, want)
		}
	}
}

// Why Latin-1 is not go-smpp's: its pdutext.Latin1 is Windows-1252, so octets 0x80-0x9F
// of a data_coding 0x03 message become other characters, and a text it cannot encode is
// returned unchanged (UTF-8 sent as if it were Latin-1).
func TestGoSMPPLatin1IsWindows1252(t *testing.T) {
	sm := []byte{0x80, 0x9F, 0xE9}
	if got := string(pdutext.Latin1(sm).Decode()); got != "€Ÿé" {
		t.Errorf("go-smpp now decodes % x as %q: reconsider using it", sm, got)
	}
	if p, err := Decode(CodingLatin1, 0, sm, nil); err != nil || p.Text != "\u0080\u009Fé" {
		t.Errorf("Decode(% x) = %q, %v", sm, p.Text, err)
	}
	if got := pdutext.Latin1("\u0080€").Encode(); string(got) != "\u0080€" {
		t.Errorf("go-smpp now encodes %q as % x", "\u0080€", got)
	}
}

// Why UCS-2 is not decoded by go-smpp: it reads an odd number of octets as a text
// ending in U+FFFD, where Decode refuses the malformed message.
func TestGoSMPPUCS2HidesOddLength(t *testing.T) {
	sm := []byte{0x00, 0x41, 0x00}
	if got := string(pdutext.UCS2(sm).Decode()); got != "A\uFFFD" {
		t.Errorf("go-smpp now decodes % x as %q", sm, got)
	}
	if _, err := Decode(CodingUCS2, 0, sm, nil); !errors.Is(err, ErrOddUCS2) {
		t.Errorf("Decode(% x): %v, want ErrOddUCS2", sm, err)
	}
}
