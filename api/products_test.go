package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/api"
)

func TestProductsRoutes(t *testing.T) {
	rig := newMerchantRig(t, nil)
	path := "/api/v1/merchants/" + rig.m1.ID + "/products"
	const markup = `<script>alert("x")</script> & Sugar 1kg`

	r := rig.do(rig.key1, "POST", path, `{"code":"12","name":"<script>alert(\"x\")</script> & Sugar 1kg","price":15000}`)
	if r.status != http.StatusCreated || r.json["code"] != "12" || r.json["price"] != 15000.0 || r.json["retired"] != false {
		t.Fatalf("the merchant adds a product: %d %s", r.status, r.body)
	}
	// Markup in a name comes back as JSON text: the same characters, none of them raw.
	if r.json["name"] != markup || strings.ContainsAny(r.body, "<>&") || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("the name came back as %q in %s (nosniff %q)", r.json["name"], r.body, r.header.Get("X-Content-Type-Options"))
	}
	if r := rig.do(opsToken, "POST", path, `{"code":"7","name":"Salt","price":5000}`); r.status != http.StatusCreated {
		t.Fatalf("an operator adds a product: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		name, token, method, path, body string
		status                          int
		code                            string
	}{
		{"a taken code", opsToken, "POST", path, `{"code":"12","name":"Other","price":1}`, 409, "conflict"},
		{"a code with a letter", rig.key1, "POST", path, `{"code":"12a","name":"x","price":1}`, 400, "invalid_request"},
		{"a code of seven digits", rig.key1, "POST", path, `{"code":"1234567","name":"x","price":1}`, 400, "invalid_request"},
		{"a code as a number", rig.key1, "POST", path, `{"code":12,"name":"x","price":1}`, 400, "invalid_request"},
		{"no name", rig.key1, "POST", path, `{"code":"13","price":1}`, 400, "invalid_request"},
		{"a zero price", rig.key1, "POST", path, `{"code":"13","name":"x","price":0}`, 400, "invalid_request"},
		{"a price in decimals", rig.key1, "POST", path, `{"code":"13","name":"x","price":1.5}`, 400, "invalid_request"},
		{"a key given twice", rig.key1, "POST", path, `{"code":"13","name":"x","price":1,"price":100000}`, 400, "invalid_request"},
		{"an unknown field", rig.key1, "POST", path, `{"code":"13","name":"x","price":1,"stock":5}`, 400, "invalid_request"},
		{"bad JSON", rig.key1, "POST", path, `{"code":"13",`, 400, "invalid_request"},
		{"two objects", rig.key1, "POST", path, `{"code":"13","name":"x","price":1}{}`, 400, "invalid_request"},
		{"an auditor adds", audToken, "POST", path, `{"code":"13","name":"x","price":1}`, 403, "forbidden"},
		{"an auditor retires", audToken, "DELETE", path + "/12", "", 403, "forbidden"},
		{"another merchant adds", rig.key2, "POST", path, `{"code":"13","name":"x","price":1}`, 404, "not_found"},
		{"another merchant lists", rig.key2, "GET", path, "", 404, "not_found"},
		{"another merchant retires", rig.key2, "DELETE", path + "/12", "", 404, "not_found"},
		{"a wallet's products", opsToken, "GET", "/api/v1/merchants/" + rig.walletAccount() + "/products", "", 404, "not_found"},
		{"retiring an unknown code", rig.key1, "DELETE", path + "/99", "", 404, "not_found"},
		{"a bad retired flag", rig.key1, "GET", path + "?retired=yes", "", 400, "invalid_request"},
	} {
		if r := rig.do(tc.token, tc.method, tc.path, tc.body); r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}

	codes := func(token, path string) string {
		t.Helper()
		r := rig.do(token, "GET", path, "")
		if r.status != http.StatusOK {
			t.Fatalf("list %s: %d %s", path, r.status, r.body)
		}
		var out struct {
			Products []struct {
				Code    string `json:"code"`
				Retired bool   `json:"retired"`
			} `json:"products"`
		}
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, p := range out.Products {
			c := p.Code
			if p.Retired {
				c += " retired"
			}
			s = append(s, c)
		}
		return strings.Join(s, ", ")
	}
	if got := codes(rig.key1, path); got != "7, 12" {
		t.Fatalf("the merchant's list: %q", got)
	}
	if got := codes(audToken, path); got != "7, 12" {
		t.Fatalf("an auditor's list: %q", got)
	}
	if r := rig.do(rig.key1, "DELETE", path+"/12", ""); r.status != http.StatusNoContent || r.body != "" {
		t.Fatalf("retire: %d %q", r.status, r.body)
	}
	if got := codes(rig.key1, path); got != "7" {
		t.Fatalf("after retiring 12: %q", got)
	}
	if got := codes(rig.key1, path+"?retired=true"); got != "7, 12 retired" {
		t.Fatalf("with the retired ones: %q", got)
	}
	if r := rig.do(rig.key1, "POST", path, `{"code":"12","name":"New sugar","price":1}`); r.status != http.StatusConflict ||
		!strings.Contains(r.message(), "retired") {
		t.Fatalf("a retired code again: %d %s, want 409 saying it was retired", r.status, r.body)
	}
	if got := codes(rig.key2, "/api/v1/merchants/"+rig.m2.ID+"/products"); got != "" {
		t.Fatalf("m2's own list: %q", got)
	}
}

func TestProductsNotConfigured(t *testing.T) {
	rig := newMerchantRig(t, func(c *api.Config) { c.Catalog = nil })
	path := "/api/v1/merchants/" + rig.m1.ID + "/products"
	for _, m := range []string{"POST", "GET", "DELETE"} {
		p := path
		if m == "DELETE" {
			p += "/12"
		}
		if r := rig.do(rig.key1, m, p, `{"code":"1","name":"x","price":1}`); r.status != http.StatusNotImplemented || r.code() != "not_configured" {
			t.Errorf("%s: %d %s, want 501", m, r.status, r.body)
		}
	}
}
