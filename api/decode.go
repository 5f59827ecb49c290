package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	payswitch "github.com/payswitch/payswitch/switch"
)

var errBadJSON = errors.New("api: bad JSON")

// decode reads exactly one JSON object with no unknown fields and no key given twice.
// The body is JSON whatever Content-Type says: curl's -d labels it a form, and refusing
// that helps nobody.
//
// encoding/json keeps the last of two equal keys, so {"amount":100,"amount":999999}
// would deposit 999999 while a log or a proxy that reads the first key sees 100. The
// body is therefore scanned token by token before it is decoded, and any repeated key,
// at any depth, is refused.
func decode(r *http.Request, v any) error {
	// The body is bounded by limitBody's MaxBytesReader, so reading it whole is safe.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return fmt.Errorf("api: read body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: empty body", errBadJSON)
	}
	if err := checkObject(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if typeErr.Field == "" {
				return fmt.Errorf("%w: the body must be a JSON object", errBadJSON)
			}
			return fmt.Errorf("%w: field %s must be %s", errBadJSON, typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
		}
		return fmt.Errorf("%w: %s", errBadJSON, strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// frame is an object or array that checkObject is inside.
type frame struct {
	path    string              // where it is, e.g. items[0].product; "" for the body itself
	keys    map[string]struct{} // the keys seen so far, folded; nil for an array
	wantKey bool                // an object's next token is a key (or its end)
	key     string              // an object's last key, to name what lies below it
	index   int                 // an array's next element
}

// child names the value that comes next in f.
func (f *frame) child() string {
	switch {
	case f.keys == nil:
		return fmt.Sprintf("%s[%d]", f.path, f.index)
	case f.path == "":
		return f.key
	}
	return f.path + "." + f.key
}

// checkObject checks that body is one JSON object and that no object in it, at any
// depth, has a key twice. Keys are compared as encoding/json matches them to fields,
// without regard to case, since {"amount":1,"Amount":2} fills the same field twice.
func checkObject(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers are only stepped over here
	var stack []*frame
	done := false // the body's object has closed
	for {
		tok, err := dec.Token()
		switch {
		case errors.Is(err, io.EOF) && done:
			return nil
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%w: the body ends inside its JSON object", errBadJSON)
		case err != nil:
			return fmt.Errorf("%w: %s", errBadJSON, strings.TrimPrefix(err.Error(), "json: "))
		}
		if len(stack) == 0 {
			if done {
				return fmt.Errorf("%w: one JSON object expected, found more after it", errBadJSON)
			}
			if tok != json.Delim('{') {
				return fmt.Errorf("%w: the body must be a JSON object", errBadJSON)
			}
			stack = append(stack, &frame{keys: map[string]struct{}{}, wantKey: true})
			continue
		}
		top := stack[len(stack)-1]
		if s, ok := tok.(string); ok && top.keys != nil && top.wantKey {
			// ToUpper then ToLower also folds the Kelvin sign and the long s, which
			// encoding/json matches to k and s.
			folded := strings.ToLower(strings.ToUpper(s))
			if _, dup := top.keys[folded]; dup {
				if top.path == "" {
					return fmt.Errorf("%w: key %q appears twice", errBadJSON, s)
				}
				return fmt.Errorf("%w: key %q appears twice in %s", errBadJSON, s, top.path)
			}
			top.keys[folded] = struct{}{}
			top.key, top.wantKey = s, false
			continue
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			done = len(stack) == 0
			continue
		}
		// tok begins a value of top: a key comes next in an object, the next element
		// in an array.
		path := top.child()
		if top.keys != nil {
			top.wantKey = true
		} else {
			top.index++
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{path: path, keys: map[string]struct{}{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: path})
		}
	}
}

func jsonKind(k string) string {
	switch k {
	case "int64", "int":
		return "an integer (minor units)"
	case "string":
		return "a string"
	}
	return "a " + k
}

// maxAmount is the most that one deposit or operator top-up may move: the engine's own
// bound (switch's maxAmount, unexported), which keeps every sum far from int64
// overflow. The engine refuses above it with a message that does not name it, so the
// API checks first and names it; TestAmountLimitIsTheEngines keeps the two equal.
const maxAmount = 1_000_000_000_000_00

// checkAmount refuses an amount of a deposit or top-up body that the engine would
// refuse, saying what is allowed.
func (s *Server) checkAmount(amount int64) error {
	switch {
	case amount <= 0:
		return fmt.Errorf("%w: amount: must be a positive whole number of minor units (100 is %s), not %d",
			payswitch.ErrInvalid, payswitch.FormatMoney(s.engine.Currency(), 100), amount)
	case amount > maxAmount:
		return fmt.Errorf("%w: amount: at most %d (%s), not %d",
			payswitch.ErrInvalid, int64(maxAmount), payswitch.FormatMoney(s.engine.Currency(), maxAmount), amount)
	}
	return nil
}
