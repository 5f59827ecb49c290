package config

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/otp"
)

const minimal = `
database: {path: data/x.db}
http: {listen: "127.0.0.1:8080"}
currency: KES
shortcode: "22333"
`

// without is minimal less its top-level key, for a case that gives that key itself.
func without(key string) string {
	var keep []string
	for _, line := range strings.Split(minimal, "\n") {
		if !strings.HasPrefix(line, key+":") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func mustParse(t *testing.T, yaml string, getenv func(string) string) *Config {
	t.Helper()
	c, err := Parse([]byte(yaml), getenv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestShippedConfig(t *testing.T) {
	c, err := Load("../config.yaml")
	if err != nil {
		t.Fatalf("the shipped config.yaml does not load: %v", err)
	}
	if c.Database.Path != "data/payswitch.db" || c.HTTP.Listen != "127.0.0.1:8080" || c.Currency != "KES" || c.Shortcode != "22333" {
		t.Fatalf("shipped config: %+v", c)
	}
	if len(c.SMPP.Links) != 1 {
		t.Fatalf("shipped links: %+v", c.SMPP.Links)
	}
	l := c.SMPP.Links[0]
	if l.Name != "carrier-a" || l.Address != "127.0.0.1:2775" || l.SystemID != "payswitch" || l.Bind != "transceiver" ||
		len(l.Prefixes) != 0 || l.TPS != 200 {
		t.Fatalf("shipped link: %+v", l)
	}
	// The example account names the numbers it may send from (contract section 9).
	if a := c.SMPP.Server.Accounts; len(a) != 1 || !reflect.DeepEqual(a[0].Prefixes, []string{"2541"}) {
		t.Fatalf("shipped server accounts: %+v", a)
	}
	if d := c.SMPP.DemoSMSC; d.Listen != l.Address || d.PhoneAPI != "127.0.0.1:2790" {
		t.Fatalf("demo SMSC %+v does not serve the shipped link", d)
	}
	if roles := []string{c.HTTP.Tokens[0].Role, c.HTTP.Tokens[1].Role}; !reflect.DeepEqual(roles, []string{"operator", "auditor"}) {
		t.Fatalf("shipped token roles %v", roles)
	}
	// "": serve keeps the key outside the data folder (otpSecret).
	if c.OTP.SecretFile != "" {
		t.Fatalf("secret file %q, want \"\"", c.OTP.SecretFile)
	}

	data, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// With the environment set, the secrets arrive and the token warnings go.
	vars := map[string]string{"PAYSWITCH_OPS_TOKEN": "ops-0123456789abcdef0123456789", "PAYSWITCH_AUDIT_TOKEN": "audit-0123456789abcdef012345",
		"SMSC_A_PASSWORD": "pw", "PAYSWITCH_OTP_SECRET": strings.Repeat("ab", 16)}
	c = mustParse(t, string(data), env(vars))
	if c.HTTP.Tokens[0].Token != vars["PAYSWITCH_OPS_TOKEN"] || c.SMPP.Links[0].Password != "pw" || c.OTP.Secret != vars["PAYSWITCH_OTP_SECRET"] {
		t.Fatalf("variables not expanded: %+v", c)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("warnings with the environment set: %q", w)
	}
}

// TestShippedConfigDocumentsEveryKey keeps config.yaml the reference: every key the
// decoder knows appears in it.
func TestShippedConfigDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range knownKeys(reflect.TypeFor[Config](), "") {
		leaf := key[strings.LastIndex(key, ".")+1:]
		leaf = strings.TrimSuffix(leaf, "[]")
		// A key may be shown in a commented-out example (database.replicas: a replica
		// needs a place to write to, which the shipped file cannot know).
		if !regexp.MustCompile(`(?m)^ *(# +)?[ -]*` + regexp.QuoteMeta(leaf) + `:`).Match(data) {
			t.Errorf("config.yaml does not show %s", key)
		}
	}
}

func TestReplicaDefaults(t *testing.T) {
	c := mustParse(t, without("database")+"database:\n  path: x.db\n  replicas:\n    - url: s3://b/p?endpoint=http://127.0.0.1:9000\n      secret_access_key: ${S3_SECRET}\n",
		env(map[string]string{"S3_SECRET": "s3cr3t"}))
	if r := c.Database.Replicas; len(r) != 1 || r[0].SyncInterval != time.Second || r[0].SecretAccessKey != "s3cr3t" {
		t.Fatalf("replicas %+v", r)
	}
	c = mustParse(t, without("database")+"database: {path: x.db, replicas: [{url: 'file:///a'}, {url: 'file:///b', sync_interval: 5s}, {url: 's3://b/x'}]}\n", nil)
	if r := c.Database.Replicas; len(r) != 3 || r[1].SyncInterval != 5*time.Second || r[2].SyncInterval != time.Second {
		t.Fatalf("several replicas %+v", r)
	}
	if c := mustParse(t, minimal, nil); len(c.Database.Replicas) != 0 {
		t.Fatalf("replicas by default: %+v", c.Database.Replicas)
	}
}

func TestDefaultsWhenSectionsLeftOut(t *testing.T) {
	c := mustParse(t, minimal+`
smpp:
  links:
    - {name: a, address: "10.0.0.1:2775", system_id: ps}
  server:
    accounts:
      - {system_id: agg, password: pw}
      - {system_id: agg2, password: pw, max_binds: 1, prefixes: ["2541", "25410"]}
airtime:
  carriers:
    - {name: a, prefixes: ["2547"]}
`, nil)
	want := defaults()
	want.Database.Path = "data/x.db"
	want.HTTP.Listen = "127.0.0.1:8080"
	want.Currency, want.Shortcode = "KES", "22333"
	want.SMPP.Links = []Link{{Name: "a", Address: "10.0.0.1:2775", SystemID: "ps", Bind: "transceiver", TPS: 200,
		Window: 10, EnquireLink: 30 * time.Second, RespTimeout: 5 * time.Second}}
	want.SMPP.Server.Accounts = []Account{{SystemID: "agg", Password: "pw", MaxBinds: 4}, {SystemID: "agg2", Password: "pw", MaxBinds: 1,
		Prefixes: []string{"2541", "25410"}}}
	want.Airtime.Carriers = []Carrier{{Name: "a", Prefixes: []string{"2547"}, Timeout: 10 * time.Second}}
	got := *c
	got.lines, got.location = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
	// The contract's defaults, spelled out.
	if c.OTP.Digits != 6 || c.OTP.TTL != 5*time.Minute || c.OTP.MaxAttempts != 3 || c.USSD.ServiceCode != "*384#" ||
		c.USSD.SessionTimeout != 180*time.Second || c.IVR.Number != "254709000000" || c.IVR.Gateway.URL != "" ||
		c.SMPP.Server.Listen != "" || c.SMPP.Server.PinGrace != time.Minute || c.Timezone != "Africa/Nairobi" {
		t.Fatalf("contract defaults not applied: %+v", c)
	}
	if c.Location().String() != "Africa/Nairobi" {
		t.Fatalf("Location() = %v", c.Location())
	}
	if r := c.Requests; r.DefaultTTL != 10*time.Minute || r.MaxTTL != 24*time.Hour || r.PerMerchantPerMinute != 600 ||
		r.PerNumberPerDay != 10 {
		t.Fatalf("requests defaults: %+v", r)
	}
	if c.OTP.Secret != "" {
		t.Fatal("a secret appeared from nowhere")
	}
	if c.Database.WriterCPU != WriterCPUOff {
		t.Fatalf("database.writer_cpu = %q, want off", c.Database.WriterCPU)
	}
	if c.Database.ReceiptSpool != ReceiptSpoolOn || !c.Database.SpoolsReceipts() {
		t.Fatalf("database.receipt_spool = %q, want on", c.Database.ReceiptSpool)
	}
	if c.Database.MOSpool != ReceiptSpoolOn || !c.Database.SpoolsMOs() {
		t.Fatalf("database.mo_spool = %q, want on", c.Database.MOSpool)
	}
	// Callbacks: this machine only, on the API's listener, no secret.
	for _, cb := range []Callbacks{c.USSD.Callbacks, c.IVR.Callbacks} {
		if cb.Listen != "" || cb.Secret != "" || !reflect.DeepEqual(cb.Allow, []string{"127.0.0.0/8", "::1/128"}) {
			t.Fatalf("callbacks defaults: %+v", cb)
		}
	}
}

// The shipped config reads the callback secrets from the environment; unset, none is
// asked and the defaults apply.
func TestShippedCallbacks(t *testing.T) {
	data, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, string(data), nil)
	for _, cb := range []Callbacks{c.USSD.Callbacks, c.IVR.Callbacks} {
		if cb.Listen != "" || cb.Secret != "" || !reflect.DeepEqual(cb.Allow, loopbackOnly()) {
			t.Fatalf("shipped callbacks without the environment: %+v", cb)
		}
	}
	c = mustParse(t, string(data), env(map[string]string{
		"PAYSWITCH_USSD_CALLBACK_SECRET": "ussd-secret-0123456789", "PAYSWITCH_IVR_CALLBACK_SECRET": "ivr-secret-0123456789"}))
	if c.USSD.Callbacks.Secret != "ussd-secret-0123456789" || c.IVR.Callbacks.Secret != "ivr-secret-0123456789" {
		t.Fatalf("callback secrets not expanded: %+v %+v", c.USSD.Callbacks, c.IVR.Callbacks)
	}
}

func TestEnvExpansion(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{"plain", "abc", "abc", ""},
		{"set", "${A}", "alpha", ""},
		{"unset", "${NOPE}", "", ""},
		{"inside text", "x-${A}-${B}-y", "x-alpha-beta-y", ""},
		{"default used when unset", "${NOPE:-dflt}", "dflt", ""},
		{"default used when empty", "${EMPTY:-dflt}", "dflt", ""},
		{"default not used when set", "${A:-dflt}", "alpha", ""},
		{"default with colon", "${NOPE:-http://x:1}", "http://x:1", ""},
		{"escaped", "$${A}", "${A}", ""},
		{"lone dollar", "pa$$word$", "pa$$word$", ""},
		{"value is not expanded again", "${REF}", "${A}", ""},
		{"unclosed", "${A", "", "without a closing"},
		{"bad name", "${1A}", "", "not a variable name"},
		{"empty name", "${}", "", "not a variable name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expand(tc.in, env(map[string]string{"A": "alpha", "B": "beta", "EMPTY": "", "REF": "${A}"}))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestEnvInConfig(t *testing.T) {
	const injection = "x\nrole: auditor\ncolour: red\n- {name: evil, token: t, role: operator}"
	yaml := `
database: {path: "${DB_DIR:-data}/x.db"}
http:
  listen: 127.0.0.1:8080
  tokens:
    - {name: ops, token: "${OPS}", role: operator}
currency: ${CUR}
shortcode: "22333"
smpp:
  links:
    - name: a
      address: ${SMSC_HOST:-127.0.0.1}:${SMSC_PORT}
      system_id: ps
      tps: ${TPS}
      window: ${WINDOW:-20}
`
	c := mustParse(t, yaml, env(map[string]string{"OPS": injection, "CUR": "KES", "SMSC_PORT": "2775"}))
	if c.HTTP.Tokens[0].Token != injection || len(c.HTTP.Tokens) != 1 || c.HTTP.Tokens[0].Role != "operator" {
		t.Fatalf("injected value changed the structure: %+v", c.HTTP.Tokens)
	}
	l := c.SMPP.Links[0]
	if c.Database.Path != "data/x.db" || c.Currency != "KES" || l.Address != "127.0.0.1:2775" || l.TPS != 200 || l.Window != 20 {
		t.Fatalf("expansion: db %q currency %q link %+v", c.Database.Path, c.Currency, l)
	}
	// A variable's value is one value, of the key's type.
	_, err := Parse([]byte(yaml), env(map[string]string{"CUR": "KES", "SMSC_PORT": "2775", "TPS": "5\nwindow: 1"}))
	wantErr(t, err, "smpp.links[0].tps", "is not a whole number")
	_, err = Parse([]byte(yaml), env(map[string]string{"CUR": "KES: x", "SMSC_PORT": "2775"}))
	wantErr(t, err, "currency", "three upper-case letters")
}

func wantErr(t *testing.T, err error, key, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one about %s", key)
	}
	var found bool
	for _, e := range unjoin(err) {
		var ce *Error
		if errors.As(e, &ce) && ce.Key == key && strings.Contains(ce.Msg, msg) {
			found = true
		}
	}
	if !found || !strings.Contains(err.Error(), "config: "+key+": ") {
		t.Fatalf("error %q does not name %s with %q", err, key, msg)
	}
}

// unjoin flattens errors.Join trees.
func unjoin(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var all []error
	for _, e := range j.Unwrap() {
		all = append(all, unjoin(e)...)
	}
	return all
}

func TestUnknownAndMalformedKeysAreNamed(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, key, msg string
		line                 int
	}{
		{"unknown top-level key", minimal + "colour: red\n", "colour", "unknown key", 6},
		{"unknown nested key", minimal + "smpp:\n  links:\n    - {name: a, address: 'h:1', system_id: s, tpss: 5}\n", "smpp.links[0].tpss", "unknown key", 8},
		{"unknown key in a section left mostly out", minimal + "otp: {digits: 6, ttl_seconds: 60}\n", "otp.ttl_seconds", "unknown key", 6},
		{"key given twice", minimal + "currency: UGX\n", "currency", "given twice", 6},
		{"not a number", minimal + "otp: {digits: six}\n", "otp.digits", "not a whole number", 6},
		{"duration without unit", minimal + "otp: {ttl: 300}\n", "otp.ttl", "not a duration", 6},
		{"duration too large", minimal + "otp: {ttl: 9999999h}\n", "otp.ttl", "too large: at most 2562047h", 6},
		{"list where a value goes", minimal + "timezone: [a, b]\n", "timezone", "want a single value", 6},
		{"value where a list goes", minimal + "http2: 1\n", "http2", "unknown key", 6},
		{"value where a section goes", minimal + "ussd: on\n", "ussd", "want a mapping", 6},
		{"merge key", minimal + "ussd:\n  <<: {service_code: '*1#'}\n", "ussd.<<", "merge keys", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), nil)
			wantErr(t, err, tc.key, tc.msg)
			var ce *Error
			if errors.As(unjoin(err)[0], &ce); ce.Line != tc.line {
				t.Fatalf("error %q at line %d, want %d", err, ce.Line, tc.line)
			}
		})
	}
	if _, err := Parse([]byte("database: [unclosed\n"), nil); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
		t.Fatalf("YAML syntax error: %v", err)
	}
	if _, err := Parse([]byte(minimal+"smpp: {links: [{name: a, password: ${PW}}]}\n"), nil); err == nil || !strings.Contains(err.Error(), `quote a reference: "${NAME}"`) {
		t.Fatalf("unquoted reference in a flow mapping: %v", err)
	}
	if _, err := Parse([]byte(minimal+"---\ncurrency: UGX\n"), nil); err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Fatalf("two documents: %v", err)
	}
	if _, err := Parse([]byte("- a\n- b\n"), nil); err == nil || !strings.Contains(err.Error(), "want a mapping") {
		t.Fatalf("a list for a file: %v", err)
	}
}

func TestValidationNamesTheKey(t *testing.T) {
	link := func(extra string) string {
		return minimal + "smpp:\n  links:\n    - {name: a, address: '127.0.0.1:2775', system_id: ps" + extra + "}\n"
	}
	for _, tc := range []struct{ name, yaml, key, msg string }{
		{"missing database.path", "http: {listen: 'h:1'}\ncurrency: KES\nshortcode: '1'\n", "database.path", "required"},
		{"missing http.listen", "database: {path: x.db}\ncurrency: KES\nshortcode: '1'\n", "http.listen", "required"},
		{"missing currency", "database: {path: x.db}\nhttp: {listen: 'h:1'}\nshortcode: '1'\n", "currency", "required"},
		{"missing shortcode", "database: {path: x.db}\nhttp: {listen: 'h:1'}\ncurrency: KES\n", "shortcode", "required"},
		{"empty file", "", "database.path", "required"},
		{"lower-case currency", strings.Replace(minimal, "currency: KES", "currency: kes", 1), "currency", "three upper-case letters"},
		{"currency too long", strings.Replace(minimal, "currency: KES", "currency: KESH", 1), "currency", "three upper-case letters"},
		{"synchronous", without("database") + "database: {path: x.db, synchronous: SOMETIMES}\n", "database.synchronous", "must be FULL"},
		{"writer_cpu", without("database") + "database: {path: x.db, writer_cpu: 3}\n", "database.writer_cpu", `"3": must be off or on`},
		{"receipt_spool", without("database") + "database: {path: x.db, receipt_spool: later}\n", "database.receipt_spool", `"later": must be on or off`},
		{"mo_spool", without("database") + "database: {path: x.db, mo_spool: maybe}\n", "database.mo_spool", `"maybe": must be on or off`},
		{"one replica twice", without("database") + "database: {path: x.db, replicas: [{url: 'file:///a'}, {url: 's3://b/x'}, {url: 'file:///a/'}]}\n", "database.replicas[2].url", "file:///a is already database.replicas[0]"},
		{"one bucket path twice", without("database") + "database: {path: x.db, replicas: [{url: 's3://b/x?region=eu'}, {url: 's3://b/x?region=us'}]}\n", "database.replicas[1].url", "s3://b/x is already database.replicas[0]"},
		{"replica without url", without("database") + "database: {path: x.db, replicas: [{sync_interval: 1s}]}\n", "database.replicas[0].url", "required"},
		{"relative file replica", without("database") + "database: {path: x.db, replicas: [{url: 'file://backups'}]}\n", "database.replicas[0].url", "file:///absolute/folder"},
		{"replica scheme", without("database") + "database: {path: x.db, replicas: [{url: 'ftp://h/x'}]}\n", "database.replicas[0].url", "must be file:///folder or s3://bucket/path"},
		{"replica credentials in url", without("database") + "database: {path: x.db, replicas: [{url: 's3://key:secret@bucket/x'}]}\n", "database.replicas[0].url", "credentials in the URL"},
		{"replica sync interval", without("database") + "database: {path: x.db, replicas: [{url: 's3://b/x', sync_interval: 0s}]}\n", "database.replicas[0].sync_interval", "must be > 0"},
		{"log level", minimal + "log: {level: loud}\n", "log.level", "must be"},
		{"log format", minimal + "log: {format: xml}\n", "log.format", "must be json or console"},
		{"listen not host:port", strings.Replace(minimal, `"127.0.0.1:8080"`, `"localhost"`, 1), "http.listen", "host:port"},
		{"bad port", strings.Replace(minimal, `"127.0.0.1:8080"`, `"localhost:99999"`, 1), "http.listen", "host:port"},
		{"role", without("http") + "http:\n  listen: 'h:1'\n  tokens: [{name: a, token: t, role: admin}]\n", "http.tokens[0].role", "must be operator or auditor"},
		{"token without name", without("http") + "http:\n  listen: 'h:1'\n  tokens: [{token: t, role: operator}]\n", "http.tokens[0].name", "required"},
		{"duplicate token name", without("http") + "http:\n  listen: 'h:1'\n  tokens: [{name: a, token: t, role: operator}, {name: a, token: u, role: auditor}]\n", "http.tokens[1].name", "also the name of http.tokens[0]"},
		{"duplicate token value", without("http") + "http:\n  listen: 'h:1'\n  tokens: [{name: a, token: t, role: operator}, {name: b, token: t, role: auditor}]\n", "http.tokens[1].token", "same token"},
		{"max body", without("http") + "http: {listen: 'h:1', max_body_bytes: 0}\n", "http.max_body_bytes", "must be > 0"},
		{"read timeout", without("http") + "http: {listen: 'h:1', read_timeout: 0s}\n", "http.read_timeout", "must be > 0"},
		{"write timeout", without("http") + "http: {listen: 'h:1', write_timeout: -1s}\n", "http.write_timeout", "must be > 0"},
		{"shortcode digits", without("shortcode") + "shortcode: 22-333\n", "shortcode", "digits only"},
		{"country code", minimal + "country_code: '+254'\n", "country_code", "digits only"},
		{"timezone", minimal + "timezone: Mars/Olympus\n", "timezone", "not a known time zone"},
		{"min amount", minimal + "limits: {min_amount: 0}\n", "limits.min_amount", "must be > 0"},
		{"min above max", minimal + "limits: {min_amount: 500, max_amount: 400}\n", "limits.min_amount", "more than limits.max_amount"},
		{"max above daily", minimal + "limits: {max_amount: 500, daily_max: 400}\n", "limits.max_amount", "more than limits.daily_max"},
		{"tps zero", link(", tps: 0"), "smpp.links[0].tps", "must be > 0"},
		{"window", link(", window: -1"), "smpp.links[0].window", "must be > 0"},
		{"enquire link", link(", enquire_link: 0s"), "smpp.links[0].enquire_link", "must be > 0"},
		{"resp timeout", link(", resp_timeout: 0s"), "smpp.links[0].resp_timeout", "must be > 0"},
		{"bind", link(", bind: receiver"), "smpp.links[0].bind", "must be transceiver or transmitter+receiver"},
		{"prefix", link(", prefixes: ['2547', '+2547']"), "smpp.links[0].prefixes[1]", "digits only"},
		{"link address", minimal + "smpp:\n  links:\n    - {name: a, address: nowhere, system_id: s}\n", "smpp.links[0].address", "host:port"},
		{"link system id", minimal + "smpp:\n  links:\n    - {name: a, address: 'h:1', system_id: ''}\n", "smpp.links[0].system_id", "required"},
		{"link name", minimal + "smpp:\n  links:\n    - {address: 'h:1', system_id: s}\n", "smpp.links[0].name", "required"},
		{"duplicate link", minimal + "smpp:\n  links:\n    - {name: a, address: 'h:1', system_id: s}\n    - {name: a, address: 'h:2', system_id: s}\n", "smpp.links[1].name", "also the name"},
		{"failover unknown", link(", failover: b"), "smpp.links[0].failover", "no link has that name"},
		{"failover self", link(", failover: a"), "smpp.links[0].failover", "itself"},
		{"server listen", minimal + "smpp: {server: {listen: 'nope'}}\n", "smpp.server.listen", "host:port"},
		{"server max binds", minimal + "smpp: {server: {max_binds: 0}}\n", "smpp.server.max_binds", "must be > 0"},
		{"account id", minimal + "smpp: {server: {accounts: [{password: p}]}}\n", "smpp.server.accounts[0].system_id", "required"},
		{"duplicate account", minimal + "smpp: {server: {accounts: [{system_id: x}, {system_id: x}]}}\n", "smpp.server.accounts[1].system_id", "also the system_id"},
		{"account binds", minimal + "smpp: {server: {accounts: [{system_id: x, max_binds: -2}]}}\n", "smpp.server.accounts[0].max_binds", "must be > 0"},
		{"account prefix", minimal + "smpp: {server: {accounts: [{system_id: x, prefixes: ['2541', '+2547']}]}}\n", "smpp.server.accounts[0].prefixes[1]", "digits only"},
		{"empty account prefix", minimal + "smpp: {server: {accounts: [{system_id: x, prefixes: ['']}]}}\n", "smpp.server.accounts[0].prefixes[0]", "digits only"},
		{"pin grace", minimal + "smpp: {server: {pin_grace: 0s}}\n", "smpp.server.pin_grace", "must be > 0"},
		{"demo listen", minimal + "smpp: {demo_smsc: {listen: '2775'}}\n", "smpp.demo_smsc.listen", "host:port"},
		{"demo phone api", minimal + "smpp: {demo_smsc: {phone_api: 'http://x'}}\n", "smpp.demo_smsc.phone_api", "host:port"},
		{"demo listen on every interface", minimal + "smpp: {demo_smsc: {listen: ':2775'}}\n", "smpp.demo_smsc.listen", "must be on loopback"},
		{"demo listen public", minimal + "smpp: {demo_smsc: {listen: '0.0.0.0:2775'}}\n", "smpp.demo_smsc.listen", "must be on loopback"},
		{"demo phone api by name", minimal + "smpp: {demo_smsc: {phone_api: 'phones.example:2790'}}\n", "smpp.demo_smsc.phone_api", "must be on loopback"},
		{"digits low", minimal + "otp: {digits: 3}\n", "otp.digits", "must be 4..10"},
		{"digits high", minimal + "otp: {digits: 11}\n", "otp.digits", "must be 4..10"},
		{"ttl", minimal + "otp: {ttl: 0s}\n", "otp.ttl", "must be > 0"},
		{"attempts", minimal + "otp: {max_attempts: 0}\n", "otp.max_attempts", "must be > 0"},
		{"resends", minimal + "otp: {max_resends: 0}\n", "otp.max_resends", "must be > 0"},
		{"resend interval", minimal + "otp: {resend_interval: 0s}\n", "otp.resend_interval", "must be > 0"},
		{"short secret", minimal + "otp: {secret: abcdef}\n", "otp.secret", "at least 32"},
		{"service code", minimal + "ussd: {service_code: '384'}\n", "ussd.service_code", "must look like"},
		{"session timeout", minimal + "ussd: {session_timeout: 0s}\n", "ussd.session_timeout", "must be > 0"},
		{"ivr number", minimal + "ivr: {number: 'call me'}\n", "ivr.number", "digits only"},
		{"ivr url", minimal + "ivr: {gateway: {url: 'ftp://voice'}}\n", "ivr.gateway.url", "http:// or https://"},
		{"callbacks listen", minimal + "ussd: {callbacks: {listen: '8081'}}\n", "ussd.callbacks.listen", "host:port"},
		{"callbacks listen is the API's", minimal + "ivr: {callbacks: {listen: '127.0.0.1:8080'}}\n", "ivr.callbacks.listen", "also http.listen"},
		{"callbacks allow not a CIDR", minimal + "ussd: {callbacks: {allow: ['127.0.0.0/8', '10.0.0.1']}}\n", "ussd.callbacks.allow[1]", "must be a CIDR"},
		{"callbacks allow bad bits", minimal + "ivr: {callbacks: {allow: ['10.0.0.0/33']}}\n", "ivr.callbacks.allow[0]", "must be a CIDR"},
		{"callbacks allow empty", minimal + "ussd: {callbacks: {allow: []}}\n", "ussd.callbacks.allow", "at least one source network"},
		{"callbacks short secret", minimal + "ivr: {callbacks: {secret: 'fifteen-chars!!'}}\n", "ivr.callbacks.secret", "at least 16 characters (got 15)"},
		{"carrier name", minimal + "airtime: {carriers: [{url: ''}]}\n", "airtime.carriers[0].name", "required"},
		{"duplicate carrier", minimal + "airtime: {carriers: [{name: a}, {name: a}]}\n", "airtime.carriers[1].name", "also the name"},
		{"carrier prefix", minimal + "airtime: {carriers: [{name: a, prefixes: [x]}]}\n", "airtime.carriers[0].prefixes[0]", "digits only"},
		{"carrier url", minimal + "airtime: {carriers: [{name: a, url: 'carrier.example/topup'}]}\n", "airtime.carriers[0].url", "http:// or https://"},
		{"carrier timeout", minimal + "airtime: {carriers: [{name: a, timeout: 0s}]}\n", "airtime.carriers[0].timeout", "must be > 0"},
		{"wrong codes per origin", minimal + "fraud: {wrong_codes_per_origin: -1}\n", "fraud.wrong_codes_per_origin", "must be 0"},
		{"request max ttl", minimal + "requests: {max_ttl: 30s}\n", "requests.max_ttl", "at least 1m0s"},
		{"request default ttl short", minimal + "requests: {default_ttl: 59s}\n", "requests.default_ttl", "from 1m0s to requests.max_ttl"},
		{"request default ttl past max", minimal + "requests: {default_ttl: 2h, max_ttl: 1h}\n", "requests.default_ttl", "(1h0m0s)"},
		{"requests per merchant", minimal + "requests: {per_merchant_per_minute: -1}\n", "requests.per_merchant_per_minute", "must be 0"},
		{"requests per number", minimal + "requests: {per_number_per_day: -5}\n", "requests.per_number_per_day", "must be 0"},
		{"empty template", minimal + "messages: {otp: '  '}\n", "messages.otp", "template is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), nil)
			wantErr(t, err, tc.key, tc.msg)
		})
	}
}

// TestSecretRuleMatchesOTP: config refuses exactly the secrets that otp.ParseSecret
// refuses, so a config that loads never fails later at start-up.
func TestSecretRuleMatchesOTP(t *testing.T) {
	for _, s := range []string{"", "short", strings.Repeat("a", 31), strings.Repeat("a", 32), strings.Repeat("ab", 16),
		" " + strings.Repeat("ab", 15) + " ", strings.Repeat("é", 16), "correct horse battery staple, ok?"} {
		_, err := otp.ParseSecret(s)
		if ok := goodSecret(s); ok != (err == nil) {
			t.Errorf("%q: config says %v, otp.ParseSecret says %v", s, ok, err)
		}
	}
}

func TestScalarsKeepTheirText(t *testing.T) {
	c := mustParse(t, without("shortcode")+"shortcode: 022333\nivr: {number: 0254709000000}\nmessages: {help: yes}\n", nil)
	if c.Shortcode != "022333" || c.IVR.Number != "0254709000000" || c.Messages["help"] != "yes" {
		t.Fatalf("scalars read as %q, %q, %q", c.Shortcode, c.IVR.Number, c.Messages["help"])
	}
	// Anchors and aliases work as YAML says.
	c = mustParse(t, minimal+"airtime:\n  carriers:\n    - {name: a, prefixes: &p ['2547']}\n    - {name: b, prefixes: *p}\n", nil)
	if !reflect.DeepEqual(c.Airtime.Carriers[1].Prefixes, []string{"2547"}) {
		t.Fatalf("alias: %+v", c.Airtime.Carriers)
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"no tokens, no links", minimal, []string{
			"http.tokens: none configured; every /api/v1 request is refused",
			"smpp.links: none configured; no SMS can be sent or received"}},
		{"empty and short tokens", without("http") + "http:\n  listen: 'h:1'\n  tokens:\n    - {name: ops, token: '${OPS}', role: operator}\n    - {name: aud, token: abc, role: auditor}\nsmpp: {links: [{name: a, address: 'h:1', system_id: s, password: p}]}\n", []string{
			"http.tokens[0] (ops): token is empty; it is disabled",
			"http.tokens[1] (aud): token is only 3 characters; use at least 32 random ones"}},
		{"link credentials", minimal + "smpp:\n  links:\n    - {name: a, address: 'h:1', system_id: a-very-long-system-id, password: ''}\n    - {name: b, address: 'h:2', system_id: s, password: '123456789'}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused",
			"smpp.links[0] (a): password is empty",
			"smpp.links[0] (a): system_id is longer than the 15 characters SMPP 3.4 allows",
			"smpp.links[1] (b): password is longer than the 8 characters SMPP 3.4 allows; some SMSCs truncate or refuse it"}},
		{"demo link needs no password", minimal + "smpp:\n  links: [{name: a, address: '127.0.0.1:2775', system_id: s}]\n  demo_smsc: {listen: '127.0.0.1:2775'}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused"}},
		{"demo SMSC beside a carrier", minimal + "smpp:\n  links:\n    - {name: a, address: 'localhost:2775', system_id: s}\n    - {name: b, address: 'smsc.example:2775', system_id: s, password: p}\n  demo_smsc: {listen: 'localhost:2775'}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused",
			"smpp.demo_smsc: THE DEMO SMSC RUNS BESIDE REAL CARRIER LINKS (b): anyone on this machine can read every SMS sent through it, codes included, and send SMS as any phone; set smpp.demo_smsc.listen empty in production"}},
		{"accounts matter only when the server listens", minimal + "smpp:\n  links: [{name: a, address: 'h:1', system_id: s, password: p}]\n  server: {accounts: [{system_id: x}]}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused"}},
		{"server account without password", minimal + "smpp:\n  links: [{name: a, address: 'h:1', system_id: s, password: p}]\n  server: {listen: '127.0.0.1:2776', accounts: [{system_id: x, password: '${X}'}]}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused",
			"smpp.server.accounts[0] (x): password is empty; it is disabled"}},
		{"server account without prefixes", minimal + "smpp:\n  links: [{name: a, address: 'h:1', system_id: s, password: p}]\n  server: {listen: '127.0.0.1:2776', accounts: [{system_id: x, password: p, prefixes: []}, {system_id: y, password: p, prefixes: ['2541']}]}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused",
			"smpp.server.accounts[0] (x): no prefixes; every submit_sm it sends is refused"}},
		{"gateways without tokens", minimal + "smpp: {links: [{name: a, address: 'h:1', system_id: s, password: p}]}\nivr: {gateway: {url: 'https://voice.example'}}\nairtime: {carriers: [{name: c, url: 'https://c.example', token: ''}]}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused",
			"ivr.gateway.token: empty; calls to the voice gateway carry no token",
			"airtime.carriers[0] (c): token is empty; requests carry no token"}},
		{"callbacks open beyond this machine without a secret", minimal + "smpp: {links: [{name: a, address: 'h:1', system_id: s, password: p}]}\nussd: {callbacks: {allow: ['10.0.0.0/8']}}\nivr: {callbacks: {allow: ['::1/128', '127.0.0.1/32', '0.0.0.0/0'], secret: '${S}'}}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused",
			"ussd.callbacks: allow admits sources beyond this machine and secret is empty; anyone on those networks can act as any number",
			"ivr.callbacks: allow admits sources beyond this machine and secret is empty; anyone on those networks can act as any number"}},
		{"callbacks open beyond this machine with a secret", minimal + "smpp: {links: [{name: a, address: 'h:1', system_id: s, password: p}]}\nussd: {callbacks: {allow: ['10.0.0.0/8'], secret: 'sixteen-chars-ok'}}\nivr: {callbacks: {allow: ['127.0.0.0/8']}}\n", []string{
			"http.tokens: none configured; every /api/v1 request is refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustParse(t, tc.yaml, nil).Warnings()
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Warnings:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Receipts and MOs go through the spool on SQLite unless it is turned off for them, and
// never on PostgreSQL, where a node's own disk would take them away from the others in a
// failover.
func TestSpoolsReceipts(t *testing.T) {
	for _, c := range []struct {
		d    Database
		want bool
	}{
		{Database{Path: "x.db", ReceiptSpool: ReceiptSpoolOn}, true},
		{Database{Path: "x.db", ReceiptSpool: ReceiptSpoolOff}, false},
		{Database{URL: "postgres://h/db", ReceiptSpool: ReceiptSpoolOn}, false},
	} {
		if got := c.d.SpoolsReceipts(); got != c.want {
			t.Errorf("%+v: SpoolsReceipts() = %v, want %v", c.d, got, c.want)
		}
	}
	for _, c := range []struct {
		d    Database
		want bool
	}{
		{Database{Path: "x.db", MOSpool: ReceiptSpoolOn}, true},
		{Database{Path: "x.db", MOSpool: ReceiptSpoolOff, ReceiptSpool: ReceiptSpoolOn}, false},
		{Database{URL: "postgres://h/db", MOSpool: ReceiptSpoolOn}, false},
	} {
		if got := c.d.SpoolsMOs(); got != c.want {
			t.Errorf("%+v: SpoolsMOs() = %v, want %v", c.d, got, c.want)
		}
	}
	if got := (Database{Path: "/var/lib/payswitch/payswitch.db"}).ReceiptSpoolPath(); got != "/var/lib/payswitch/payswitch.db.receipts" {
		t.Errorf("ReceiptSpoolPath() = %q", got)
	}
}
