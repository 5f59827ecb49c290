package smpp

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	gsm "github.com/fiorix/go-smpp/smpp/encoding"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"golang.org/x/text/encoding/charmap"
)

// Data codings and esm_class bits used by the codec (SMPP 3.4 section 5.2.19 and 5.2.12).
const (
	CodingGSM7   uint8 = 0x00 // SMSC default alphabet: GSM 03.38, one septet per byte
	CodingIA5    uint8 = 0x01 // IA5 (CCITT T.50), in practice ASCII
	CodingBinary uint8 = 0x02 // 8-bit binary
	CodingLatin1 uint8 = 0x03 // ISO-8859-1
	Coding8Bit   uint8 = 0x04 // 8-bit binary (GSM class coding)
	CodingUCS2   uint8 = 0x08 // UCS-2 big-endian; phones send UTF-16 (surrogate pairs)

	ESMClassUDHI uint8 = 0x40 // short_message starts with a user data header
)

// Message size limits of one SMS (140 octets of user data).
const (
	gsmSingle  = 160 // septets in a lone message
	gsmPart    = 153 // septets in a part of a concatenated message (UDH takes 7)
	ucs2Single = 70  // UTF-16 code units in a lone message
	ucs2Part   = 67  // UTF-16 code units in a part of a concatenated message
	maxParts   = 255
	gsmEscape  = 0x1B
)

// GSM 03.38 is encoded by go-smpp (smpp/encoding, unpacked: SMPP's data_coding 0 carries
// one septet per octet), whose tables and escapes are right for encoding. Decoding stays
// this file's, with the tables below: go-smpp's decoder fails the whole message on a
// trailing escape, on an escape before a septet outside the extension table and on an
// octet above 0x7F, where GSM 03.38 asks for the default-table character and a user's
// MO must not be lost to one odd septet (TestGoSMPPGSMDecoderRefusesWhatPhonesSend). Its
// packed form is not used at all: its decoder adds an '@' after a message of seven
// septets and drops an '@' that is the eighth septet of a group after a septet below
// 0x40 (TestGoSMPPPackedGSMMangles). Septets are counted here, on the unpacked octets:
// go-smpp does not count them.

// gsmBasic is the GSM 03.38 default alphabet indexed by septet; 0x1B is the escape to
// the extension table.
var gsmBasic = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 0x1B, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsmExtension is the GSM 03.38 extension table: the septet that follows an escape.
var gsmExtension = map[byte]rune{
	0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\',
	0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€',
}

// Segment is one submit_sm/deliver_sm body part.
type Segment struct {
	DataCoding   uint8
	ESMClass     uint8
	ShortMessage []byte // UDH (if any) + encoded text
}

// Encode turns text into the short messages that carry it: GSM 7-bit default alphabet
// (data_coding 0x00, unpacked, one septet per byte) when every rune has a GSM code,
// otherwise UCS-2 big-endian (data_coding 0x08, UTF-16 so that emoji survive). A text
// longer than one SMS is split into parts of 153 septets or 67 UTF-16 units, never
// between an escape and its character nor inside a surrogate pair, each part carrying a
// concatenation UDH (05 00 03 ref total seq) and esm_class 0x40. A text that would need
// more than 255 parts is cut at 255.
func Encode(text string, ref uint8) []Segment {
	if septets, ok := gsmSeptets(text); ok {
		return split(CodingGSM7, septets, gsmSingle, gsmPart, ref, func(b []byte, i int) int {
			if b[i] == gsmEscape && i+1 < len(b) {
				return 2
			}
			return 1
		}, 1)
	}
	units := ucs2Bytes(text)
	return split(CodingUCS2, units, ucs2Single*2, ucs2Part*2, ref, func(b []byte, i int) int {
		if i+3 < len(b) && utf16.IsSurrogate(rune(binary.BigEndian.Uint16(b[i:]))) {
			return 4
		}
		return 2
	}, 2)
}

// split cuts encoded into lone or concatenated segments. single and part are sizes in
// bytes of encoded; step says how many bytes the character starting at i takes so that
// no character is cut; unit is the byte size of the smallest character.
func split(coding uint8, encoded []byte, single, part int, ref uint8, step func([]byte, int) int, unit int) []Segment {
	if len(encoded) <= single {
		return []Segment{{DataCoding: coding, ShortMessage: encoded}}
	}
	var chunks [][]byte
	for start := 0; start < len(encoded) && len(chunks) < maxParts; {
		end := start
		for end < len(encoded) {
			n := step(encoded, end)
			if end+n-start > part {
				break
			}
			end += n
		}
		if end == start { // cannot happen with sane sizes; guard against a loop
			end = min(start+unit, len(encoded))
		}
		chunks = append(chunks, encoded[start:end])
		start = end
	}
	segs := make([]Segment, len(chunks))
	for i, c := range chunks {
		sm := make([]byte, 0, 6+len(c))
		sm = append(sm, 0x05, 0x00, 0x03, ref, byte(len(chunks)), byte(i+1))
		sm = append(sm, c...)
		segs[i] = Segment{DataCoding: coding, ESMClass: ESMClassUDHI, ShortMessage: sm}
	}
	return segs
}

// gsmSeptets encodes text in the GSM default alphabet, one septet per byte (an
// extension character is the escape and its septet); ok is false when some rune has no
// GSM code (go-smpp's ErrInvalidCharacter).
func gsmSeptets(text string) (septets []byte, ok bool) {
	septets, err := gsm.GSM7(false).NewEncoder().Bytes([]byte(text))
	if err != nil {
		return nil, false
	}
	return septets, true
}

// GSMFits reports whether text can be sent in the GSM default alphabet.
func GSMFits(text string) bool {
	_, ok := gsmSeptets(text)
	return ok
}

// ucs2Bytes encodes text as UTF-16 big-endian, without a byte order mark, with
// go-smpp's pdutext.UCS2 (x/text's UTF-16, which cannot fail: invalid UTF-8 becomes
// U+FFFD, as Go's own conversion does).
func ucs2Bytes(text string) []byte {
	return pdutext.UCS2(text).Encode()
}

// Part is one decoded short message.
type Part struct {
	Text  string
	Ref   uint16
	Total uint8 // Total <= 1: whole message
	Seq   uint8
}

// SAR is the concatenation information of the sar_msg_ref_num, sar_total_segments and
// sar_segment_seqnum TLVs.
type SAR struct {
	Ref        uint16
	Total, Seq uint8
}

// Decode turns the short message of a deliver_sm (or submit_sm) into text and its
// concatenation information. It understands data_coding 0x00 (GSM 7-bit unpacked),
// 0x01 (IA5/ASCII), 0x03 (Latin-1), 0x08 (UCS-2/UTF-16 BE), 0x02 and 0x04 (8-bit, read
// as Latin-1) and the GSM data coding groups 0x10-0x1F and 0xF0-0xFF; a UDH (esm_class
// 0x40) with IE 0x00 (8-bit reference) or 0x08 (16-bit reference); and the SAR TLVs when
// sar is not nil. A message_payload TLV is passed by the caller as shortMessage.
// Malformed input gives an error, never a panic. A concatenation IE with a zero total,
// a zero sequence or a sequence above the total is ignored, as GSM 03.40 says.
func Decode(dataCoding, esmClass uint8, shortMessage []byte, sar *SAR) (Part, error) {
	var p Part
	body := shortMessage
	if esmClass&ESMClassUDHI != 0 {
		var err error
		body, err = parseUDH(shortMessage, &p)
		if err != nil {
			return Part{}, err
		}
	}
	if p.Total == 0 && sar != nil && sar.Total > 1 && sar.Seq >= 1 && sar.Seq <= sar.Total {
		p.Ref, p.Total, p.Seq = sar.Ref, sar.Total, sar.Seq
	}
	text, err := decodeText(dataCoding, body)
	if err != nil {
		return Part{}, err
	}
	p.Text = text
	return p, nil
}

// parseUDH reads the user data header at the start of sm into p and returns the text
// that follows it.
func parseUDH(sm []byte, p *Part) ([]byte, error) {
	if len(sm) < 1 {
		return nil, fmt.Errorf("%w: empty message with UDH flag", ErrBadUDH)
	}
	udhl := int(sm[0])
	if 1+udhl > len(sm) {
		return nil, fmt.Errorf("%w: header length %d beyond message of %d octets", ErrBadUDH, udhl, len(sm))
	}
	ies := sm[1 : 1+udhl]
	for len(ies) > 0 {
		if len(ies) < 2 {
			return nil, fmt.Errorf("%w: truncated information element", ErrBadUDH)
		}
		iei, iel := ies[0], int(ies[1])
		if 2+iel > len(ies) {
			return nil, fmt.Errorf("%w: element 0x%02x length %d beyond header", ErrBadUDH, iei, iel)
		}
		data := ies[2 : 2+iel]
		ies = ies[2+iel:]
		var ref uint16
		var total, seq uint8
		switch {
		case iei == 0x00 && iel == 3:
			ref, total, seq = uint16(data[0]), data[1], data[2]
		case iei == 0x08 && iel == 4:
			ref, total, seq = binary.BigEndian.Uint16(data), data[2], data[3]
		case iei == 0x00 || iei == 0x08:
			return nil, fmt.Errorf("%w: concatenation element 0x%02x of length %d", ErrBadUDH, iei, iel)
		default:
			continue // other elements (ports, formatting) do not change the text
		}
		if total == 0 || seq == 0 || seq > total {
			continue
		}
		p.Ref, p.Total, p.Seq = ref, total, seq
	}
	return sm[1+udhl:], nil
}

// decodeText turns body in the given data coding into a string.
func decodeText(dataCoding uint8, body []byte) (string, error) {
	switch {
	case dataCoding == CodingGSM7:
		return decodeGSM(body), nil
	case dataCoding == CodingIA5, dataCoding == CodingLatin1,
		dataCoding == CodingBinary, dataCoding == Coding8Bit:
		// IA5 is ASCII; bytes above 0x7F in it are read as Latin-1 rather than dropped.
		return decodeLatin1(body)
	case dataCoding == CodingUCS2:
		return decodeUCS2(body)
	case dataCoding&0xF0 == 0xF0: // data coding/message class group
		if dataCoding&0x04 != 0 {
			return decodeLatin1(body)
		}
		return decodeGSM(body), nil
	case dataCoding&0xE0 == 0x00 && dataCoding&0x10 != 0: // general group, uncompressed, with class
		switch (dataCoding >> 2) & 0x03 {
		case 0:
			return decodeGSM(body), nil
		case 1:
			return decodeLatin1(body)
		case 2:
			return decodeUCS2(body)
		}
	}
	return "", fmt.Errorf("%w: 0x%02x", ErrUnsupportedCoding, dataCoding)
}

// decodeGSM reads unpacked GSM 7-bit septets. An escape followed by a septet that is not
// in the extension table gives the default-table character, as GSM 03.38 asks; a trailing
// or doubled escape gives a space. Octets above 0x7F are not septets and become U+FFFD.
func decodeGSM(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c > 0x7F:
			sb.WriteRune(utf8.RuneError)
		case c == gsmEscape:
			if i+1 >= len(b) || b[i+1] == gsmEscape || b[i+1] > 0x7F {
				sb.WriteByte(' ')
				if i+1 < len(b) && b[i+1] == gsmEscape {
					i++
				}
				continue
			}
			i++
			if r, ok := gsmExtension[b[i]]; ok {
				sb.WriteRune(r)
			} else {
				sb.WriteRune(gsmBasic[b[i]])
			}
		default:
			sb.WriteRune(gsmBasic[c])
		}
	}
	return sb.String()
}

// decodeLatin1 reads ISO-8859-1, which SMPP's data_coding 0x03 is. Not go-smpp's
// pdutext.Latin1: that is Windows-1252, which reads 0x80-0x9F as other characters
// (0x80 as '€') and, encoding, returns its input unchanged when a rune does not fit
// (TestGoSMPPLatin1IsWindows1252).
func decodeLatin1(b []byte) (string, error) {
	out, err := charmap.ISO8859_1.NewDecoder().Bytes(b)
	if err != nil {
		return "", fmt.Errorf("smpp: latin-1 text: %w", err)
	}
	return string(out), nil
}

// decodeUCS2 reads UTF-16 big-endian; an unpaired surrogate becomes U+FFFD. Not
// go-smpp's pdutext.UCS2, which reads an odd number of octets as a text ending in
// U+FFFD: such a message is malformed, and refusing it tells the sender so.
func decodeUCS2(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", fmt.Errorf("%w: %d octets", ErrOddUCS2, len(b))
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(units)), nil
}
