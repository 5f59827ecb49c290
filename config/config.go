// Package config loads and checks config.yaml, the switch's one configuration file.
//
// The keys are those of the contract (section 2) plus the additions documented on each
// field below. Loading is strict: an unknown key, a missing required key or a bad value
// stops start-up with an error that names the key by its path, such as
// "config: smpp.links[0].tps: must be > 0 (line 14)". Every section except database,
// http, currency and shortcode may be left out; the defaults documented here apply.
//
// Environment variables: "${NAME}" anywhere in a value is replaced by the variable NAME
// (unset: empty), "${NAME:-word}" by word when NAME is unset or empty, and "$${" stands
// for a literal "${". Expansion happens on the parsed values, never on the file's text,
// so a variable holding YAML syntax stays one string and cannot add keys. A value that is
// empty only because a variable is unset takes the key's default (so
// "tps: ${TPS}" with TPS unset is 200).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	_ "time/tzdata" // timezone works on machines without a zoneinfo database

	"gopkg.in/yaml.v3"
)

// Config is the whole file. Durations are written like "5m" or "180s".
type Config struct {
	Database Database `yaml:"database"`
	// Log is an addition: how the switch logs.
	Log  Log  `yaml:"log"`
	HTTP HTTP `yaml:"http"`
	// Currency is the ISO 4217 code of every wallet (required), e.g. KES.
	Currency string `yaml:"currency"`
	// Shortcode is the number users text; MT messages come from it (required, digits).
	Shortcode string `yaml:"shortcode"`
	// CountryCode is an addition: the calling code that turns numbers typed in national
	// form (0700000001) into international form (254700000001). Default "254".
	CountryCode string `yaml:"country_code"`
	// Timezone is an addition: the IANA zone whose calendar day is the business day for
	// settlement and the daily limit. Default Africa/Nairobi.
	Timezone string `yaml:"timezone"`
	// Limits is an addition: amount limits in minor units.
	Limits  Limits  `yaml:"limits"`
	SMPP    SMPP    `yaml:"smpp"`
	OTP     OTP     `yaml:"otp"`
	USSD    USSD    `yaml:"ussd"`
	IVR     IVR     `yaml:"ivr"`
	Airtime Airtime `yaml:"airtime"`
	// Fraud is an addition: controls against the usual attacks on SMS-code payments.
	Fraud Fraud `yaml:"fraud"`
	// Requests is an addition: merchants' requests to pay (contract section 10).
	Requests Requests `yaml:"requests"`
	// Webhooks is an addition: how merchants' events are delivered (contract section 10).
	Webhooks Webhooks `yaml:"webhooks"`
	// Escrow is an addition: guaranteed payments (contract section 11; escrow.go).
	Escrow Escrow `yaml:"escrow"`
	// Tiers (contract section 14): each KYC tier's limits, by tier "0", "1", "2". A tier
	// left out, or a limit left at 0, takes limits' (max_payment, daily_max) or none
	// (max_balance).
	Tiers map[string]Tier `yaml:"tiers"`
	// Tariff (contract section 14): fee bands per payment type, ascending; a type left
	// out costs nothing.
	Tariff map[string][]Band `yaml:"tariff"`
	// Risk (contract section 14): the rules that grade payment requests (risk.go).
	Risk Risk `yaml:"risk"`
	// Messages is an addition: message key -> template, replacing the built-in text of
	// that key. The engine owns the keys and placeholders and checks them.
	Messages map[string]string `yaml:"messages"`

	location *time.Location // Timezone, loaded by Validate
	lines    map[string]int // key path -> line in the file, for error messages
}

// Database is where the switch keeps its state.
type Database struct {
	// Path is the SQLite file, relative to the working directory. Exactly one of Path
	// and URL is set.
	Path string `yaml:"path"`
	// URL runs the switch on PostgreSQL (section 13): postgres://user:pass@host/db, or a
	// multi-host postgres://h1,h2/db?target_session_attrs=read-write that follows a
	// promoted standby. Several serve processes may share it.
	URL string `yaml:"url"`
	// Synchronous is an addition: SQLite's synchronous pragma. FULL (default) survives
	// power loss; NORMAL survives a crash of the switch but not of the machine.
	Synchronous string `yaml:"synchronous"`
	// Groups is an addition, for PostgreSQL: how many transactions this node fills with
	// its writes at once (group commit; default 2). Each runs its statements one after
	// another, so the database's work at once is about groups × nodes transactions:
	// size it so that this sum is near twice the database server's cores.
	Groups int `yaml:"groups"`
	// WriterCPU is an addition, for SQLite: "on" keeps the store's one writer on a CPU
	// of its own, the last this process may use, and the rest of serve on the others,
	// when there are at least two; "off" (default) lets every thread run anywhere.
	WriterCPU string `yaml:"writer_cpu"`
	// ReceiptSpool is an addition, for SQLite: "on" (default) makes a delivery receipt
	// durable in a journal of its own (the folder Path + ".receipts") and acknowledges its
	// deliver_sm then, before the main writer applies it; "off" acknowledges it once the
	// main database has it. On PostgreSQL receipts always take the second way, so that a
	// node lost in a failover holds none (README, "Delivery receipts").
	ReceiptSpool string `yaml:"receipt_spool"`
	// MOSpool is an addition, for SQLite: "on" (default) makes an SMS from a phone (an
	// MO) durable in the same journal, its text sealed, and acknowledges its deliver_sm
	// then, before the engine decides on it; "off" acknowledges it once the engine's
	// decision is in the main database. On PostgreSQL MOs always take the second way.
	MOSpool string `yaml:"mo_spool"`
	// Replicas is an addition to the contract's shape (section 12): continuous copies
	// of the database, streamed by Litestream; each receives every commit, and one that
	// cannot be written holds none of the others back (see replica/doc.go). Each
	// replica once. Empty (default): none.
	Replicas []Replica `yaml:"replicas"`
}

// The values of Database.WriterCPU.
const (
	WriterCPUOn  = "on"
	WriterCPUOff = "off"
)

// The values of Database.ReceiptSpool and Database.MOSpool.
const (
	ReceiptSpoolOn  = "on"
	ReceiptSpoolOff = "off"
)

// Replica is one continuous copy of the database.
type Replica struct {
	// URL is file:///absolute/folder or s3://bucket/path (S3-compatible services take
	// ?endpoint=https://host&region=...&forcePathStyle=true).
	URL string `yaml:"url"`
	// AccessKeyID and SecretAccessKey are an S3 replica's credentials, from the
	// environment (${NAME}); empty: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	// SyncInterval is how often new commits are shipped (default 1s): the lag, and so
	// what a lost disk can cost, is about this long.
	SyncInterval time.Duration `yaml:"sync_interval"`
}

// Log is an addition: the switch's log output.
type Log struct {
	Level  string `yaml:"level"`  // trace | debug | info (default) | warn | error
	Format string `yaml:"format"` // json (default) | console
}

// HTTP is the admin and operator API.
type HTTP struct {
	Listen string  `yaml:"listen"` // host:port (required)
	Tokens []Token `yaml:"tokens"` // bearer tokens for /api/v1
	// MaxBodyBytes, ReadTimeout and WriteTimeout are additions: request size and time
	// limits. Defaults 65536, 10s, 10s.
	MaxBodyBytes int64         `yaml:"max_body_bytes"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// Token is one bearer token. An empty Token (its variable unset) is disabled; Warnings
// says so.
type Token struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
	Role  string `yaml:"role"` // operator (read and write) | auditor (read only)
}

// Limits are additions: per-payment and per-wallet-per-business-day amounts, in minor
// units. Defaults 1000 (10.00), 15000000 (150,000.00) and 30000000 (300,000.00).
type Limits struct {
	MinAmount int64 `yaml:"min_amount"`
	MaxAmount int64 `yaml:"max_amount"`
	DailyMax  int64 `yaml:"daily_max"`
}

// Fraud sets the fraud controls. Defaults: lock a number for 1h after 5 wrong codes
// within 24h (across payments), 10 payment requests per number per minute, no SIM-swap
// check (sim_swap.url empty).
type Fraud struct {
	WrongCodesLock    int           `yaml:"wrong_codes_lock"`    // 0 = off
	LockWindow        time.Duration `yaml:"lock_window"`         // default 24h
	LockDuration      time.Duration `yaml:"lock_duration"`       // default 1h
	RequestsPerMinute int           `yaml:"requests_per_minute"` // 0 = off
	SIMSwap           SIMSwap       `yaml:"sim_swap"`
	// WrongCodesPerOrigin caps the wrong codes that one callback source (a USSD or IVR
	// gateway's address) counts against a number's lock per lock_window; 0 means
	// wrong_codes_lock - 1, so that one source alone can never lock a number.
	WrongCodesPerOrigin int `yaml:"wrong_codes_per_origin"`
}

// Requests bounds merchants' requests to pay (contract section 10): how long one waits
// for the payer's code, and how many the switch sends. The counts are kept in the
// database, per window, so that they hold across restarts. Defaults: 10m, 24h, 600 a
// merchant a minute, 10 a number a day.
type Requests struct {
	// DefaultTTL is how long a request waits when the merchant names no ttl.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL is the longest ttl a merchant may name (the shortest is 1m).
	MaxTTL time.Duration `yaml:"max_ttl"`
	// PerMerchantPerMinute caps the requests one merchant sends per clock minute; 0 = off.
	PerMerchantPerMinute int `yaml:"per_merchant_per_minute"`
	// PerNumberPerDay caps the requests one number receives per business day, from all
	// merchants and operators' airtime reminders together; 0 = off.
	PerNumberPerDay int `yaml:"per_number_per_day"`
}

// MinRequestTTL is the shortest time a request to pay may wait for its code: less is
// not time enough to read an SMS and answer it.
const MinRequestTTL = time.Minute

// SIMSwap is the carrier's SIM-swap check, asked before payments of at least Threshold.
// The API is the CAMARA SIM Swap "check" call: POST url with {"phoneNumber": "+254…",
// "maxAge": hours} answered {"swapped": true|false}.
type SIMSwap struct {
	URL       string        `yaml:"url"` // empty (default): no check
	Token     string        `yaml:"token"`
	Threshold int64         `yaml:"threshold"` // minor units; default 500000 (5,000.00)
	MaxAge    time.Duration `yaml:"max_age"`   // a swap more recent than this counts; default 72h
	Action    string        `yaml:"action"`    // refuse (default) | freeze (refuse and freeze the account)
	OnError   string        `yaml:"on_error"`  // refuse (default) | allow, when the check cannot be made
	Timeout   time.Duration `yaml:"timeout"`   // default 3s
}

// Webhooks sets the delivery of merchants' events (contract section 10). A delivery not
// answered with a 2xx within Timeout is retried with backoff until RetryFor after the
// event; a merchant whose endpoint fails MaxFailuresBeforePause times in a row has its
// deliveries paused for Pause, so that it holds no worker meanwhile. Defaults 10s, 72h,
// 8 workers, 5 failures, 1m.
type Webhooks struct {
	Timeout                time.Duration `yaml:"timeout"`   // at most 10s, the contract's limit
	RetryFor               time.Duration `yaml:"retry_for"` // at least 24h, the contract's minimum
	Workers                int           `yaml:"workers"`   // deliveries in flight at once, all merchants
	MaxFailuresBeforePause int           `yaml:"max_failures_before_pause"`
	Pause                  time.Duration `yaml:"pause"`
}

// SMPP is the switch's SMPP side.
type SMPP struct {
	Links  []Link     `yaml:"links"`  // the carrier SMSCs the switch binds to
	Server SMPPServer `yaml:"server"` // optional: ESMEs that bind to the switch
	// DemoSMSC is an addition: the built-in SMSC simulator for first runs.
	DemoSMSC DemoSMSC `yaml:"demo_smsc"`
	// PayerReceiptDLR is an addition: whether the payer's receipt SMS (the one that says
	// a payment is confirmed) asks the SMSC for a delivery receipt. Default true. The
	// code SMS always asks, since the switch records whether a code reached the phone.
	// false spares a deliver_sm and a store write per payment; the console then shows
	// a payer's receipt SMS as sent, never as delivered or undeliverable.
	PayerReceiptDLR bool `yaml:"payer_receipt_dlr"`
}

// Link is one bind to a carrier SMSC.
type Link struct {
	Name     string `yaml:"name"`    // unique; used in logs, metrics and failover
	Address  string `yaml:"address"` // host:port of the SMSC
	SystemID string `yaml:"system_id"`
	Password string `yaml:"password"`
	// SystemType is an addition: the bind's system_type, if the carrier wants one.
	SystemType string `yaml:"system_type"`
	// Bind is transceiver (default) or transmitter+receiver (two binds).
	Bind string `yaml:"bind"`
	// Prefixes are the MSISDN prefixes whose MT goes over this link; empty: any.
	Prefixes []string `yaml:"prefixes"`
	// TPS is the most submit_sm per second on this link. Default 200.
	TPS int `yaml:"tps"`
	// Window, EnquireLink, RespTimeout and Failover are additions. Window is how many
	// submit_sm may await their response at once (default 10); EnquireLink is the
	// keep-alive period (default 30s); RespTimeout is how long a request waits for its
	// response (default 5s); Failover names another link that takes this link's traffic
	// while it is down (default none).
	Window      int           `yaml:"window"`
	EnquireLink time.Duration `yaml:"enquire_link"`
	RespTimeout time.Duration `yaml:"resp_timeout"`
	Failover    string        `yaml:"failover"`
	// USSDPush (contract section 10) says the SMSC takes network-initiated USSD on this
	// link: a merchant's request to pay to a number this link serves is also pushed to
	// the phone as a USSD screen. Default false.
	USSDPush bool `yaml:"ussd_push"`
}

// SMPPServer is the switch acting as an SMSC for carriers and aggregators.
type SMPPServer struct {
	Listen string `yaml:"listen"` // host:port; empty (default): off
	// MaxBinds is an addition: how many binds one account may hold at once, unless the
	// account says otherwise. Default 4.
	MaxBinds int       `yaml:"max_binds"`
	Accounts []Account `yaml:"accounts"`
	// PinGrace is an addition: how long, from its creation, an answer to a number pinned
	// to an account that has no session able to take it waits for one before it goes by
	// the carrier route instead. Default 1m.
	PinGrace time.Duration `yaml:"pin_grace"`
}

// Account is an ESME allowed to bind to the switch. An account with an empty password
// is disabled (Warnings says so): it must not be able to bind.
type Account struct {
	SystemID string `yaml:"system_id"`
	Password string `yaml:"password"`
	// MaxBinds is an addition: this account's limit of simultaneous binds; 0 or absent
	// means smpp.server.max_binds.
	MaxBinds int `yaml:"max_binds"`
	// Prefixes are the MSISDN prefixes of the numbers this account may send from
	// (contract section 9); empty: none, so every submit_sm is refused.
	Prefixes []string `yaml:"prefixes"`
}

// DemoSMSC is an addition: a built-in SMSC simulator for first runs and demos.
type DemoSMSC struct {
	// Listen is the simulator's SMPP address (host:port); empty (default): off. Links
	// whose address equals it bind to the simulator, and only they; serve gives one
	// without a password a random one for the run. Both addresses must be on loopback:
	// the simulator has no sign-in and shows every SMS, codes included.
	Listen string `yaml:"listen"`
	// PhoneAPI is the address (host:port) of the simulator's HTTP API through which
	// simulated phones send MO and read their MT; empty: the simulator picks a loopback
	// port.
	PhoneAPI string `yaml:"phone_api"`
}

// OTP sets the one-time codes that confirm payments.
type OTP struct {
	Digits      int           `yaml:"digits"`       // 4..10, default 6
	TTL         time.Duration `yaml:"ttl"`          // default 5m
	MaxAttempts int           `yaml:"max_attempts"` // wrong codes before the payment fails, default 3
	// MaxResends, ResendInterval, Secret and SecretFile are additions. MaxResends is how
	// many new codes RESEND may get per payment (default 3), at least ResendInterval
	// apart (default 30s). Secret is the key codes are hashed with: at least 32 hex
	// digits, or any string of at least 32 characters; usually "${PAYSWITCH_OTP_SECRET}".
	// When it is empty, the key lives in SecretFile, created on first start with mode
	// 0600 in a folder of mode 0700. SecretFile "" (the default) means the environment
	// variable PAYSWITCH_OTP_SECRET_FILE, or else payswitch/otp.secret in the user's
	// config folder (os.UserConfigDir): never beside the database by default, so that a
	// copy of the data folder does not carry the key (serve warns when it is there).
	MaxResends     int           `yaml:"max_resends"`
	ResendInterval time.Duration `yaml:"resend_interval"`
	Secret         string        `yaml:"secret"`
	SecretFile     string        `yaml:"secret_file"`
}

// USSD is the USSD channel.
type USSD struct {
	ServiceCode    string        `yaml:"service_code"`    // default "*384#"
	SessionTimeout time.Duration `yaml:"session_timeout"` // default 180s
	// Messages is an addition: USSD screen text key -> template (keys of ussd.DefaultTexts).
	Messages map[string]string `yaml:"messages"`
	// Callbacks says who may call POST /ussd (contract section 5).
	Callbacks Callbacks `yaml:"callbacks"`
}

// IVR is the voice channel.
type IVR struct {
	Number  string     `yaml:"number"` // the number callers dial; default "254709000000"
	Gateway IVRGateway `yaml:"gateway"`
	// Callbacks says who may call POST /ivr (contract sections 5 and 6).
	Callbacks Callbacks `yaml:"callbacks"`
}

// Callbacks guards a gateway callback (/ussd or /ivr). Such a request names a phone
// number and acts as it, so only the gateway may send it: a request must come from a
// source in Allow, carry Secret when one is set, and carry no browser header (Origin,
// Sec-Fetch-*); anything else gets 403 and changes nothing.
type Callbacks struct {
	// Listen is a host:port of the callback's own; empty (default): the API's listener
	// (http.listen). When set, the API's listener no longer serves the path.
	Listen string `yaml:"listen"`
	// Allow lists the source networks (CIDRs) requests may come from, matched against
	// the connection's address only: a proxy in front must itself be listed, and then
	// Secret is what tells the gateway from anyone else behind the proxy. Default
	// ["127.0.0.0/8", "::1/128"]; "0.0.0.0/0" and "::/0" allow any source.
	Allow []string `yaml:"allow"`
	// Secret, when set (16 characters at least), must arrive as the key query parameter
	// or the X-Payswitch-Key header. Default empty: none asked.
	Secret string `yaml:"secret"`
}

// loopbackOnly is the default of Callbacks.Allow: this machine only.
func loopbackOnly() []string { return []string{"127.0.0.0/8", "::1/128"} }

// IVRGateway is the voice gateway's API for outbound calls.
type IVRGateway struct {
	URL   string `yaml:"url"` // http(s); empty (default): no outbound calls
	Token string `yaml:"token"`
}

// Airtime is the carriers' airtime APIs.
type Airtime struct {
	Carriers []Carrier `yaml:"carriers"`
}

// Carrier is one carrier's airtime API.
type Carrier struct {
	Name     string        `yaml:"name"`
	Prefixes []string      `yaml:"prefixes"` // MSISDN prefixes this carrier serves
	URL      string        `yaml:"url"`      // http(s); empty: no airtime for these numbers
	Token    string        `yaml:"token"`
	Timeout  time.Duration `yaml:"timeout"` // per request, default 10s
}

// defaults is a Config with every default filled in; decoding writes over it.
func defaults() Config {
	return Config{
		Database: Database{Synchronous: "FULL", Groups: 2, WriterCPU: WriterCPUOff, ReceiptSpool: ReceiptSpoolOn,
			MOSpool: ReceiptSpoolOn},
		Log:         Log{Level: "info", Format: "json"},
		HTTP:        HTTP{MaxBodyBytes: 65536, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second},
		CountryCode: "254",
		Timezone:    "Africa/Nairobi",
		Limits:      Limits{MinAmount: 1000, MaxAmount: 15000000, DailyMax: 30000000},
		SMPP:        SMPP{Server: SMPPServer{MaxBinds: 4, PinGrace: time.Minute}, PayerReceiptDLR: true},
		OTP:         OTP{Digits: 6, TTL: 5 * time.Minute, MaxAttempts: 3, MaxResends: 3, ResendInterval: 30 * time.Second},
		USSD: USSD{ServiceCode: "*384#", SessionTimeout: 180 * time.Second,
			Callbacks: Callbacks{Allow: loopbackOnly()}},
		IVR: IVR{Number: "254709000000", Callbacks: Callbacks{Allow: loopbackOnly()}},
		Fraud: Fraud{WrongCodesLock: 5, LockWindow: 24 * time.Hour, LockDuration: time.Hour, RequestsPerMinute: 10,
			SIMSwap: SIMSwap{Threshold: 500000, MaxAge: 72 * time.Hour, Action: "refuse", OnError: "refuse", Timeout: 3 * time.Second}},
		Requests: Requests{DefaultTTL: 10 * time.Minute, MaxTTL: 24 * time.Hour, PerMerchantPerMinute: 600, PerNumberPerDay: 10},
		Webhooks: Webhooks{Timeout: 10 * time.Second, RetryFor: 72 * time.Hour, Workers: 32, MaxFailuresBeforePause: 5,
			Pause: time.Minute},
		Escrow: Escrow{ReleaseAfter: DefaultEscrowReleaseAfter},
	}
}

// elementDefault is a new list element of type t with its defaults, for decoding to
// write over.
func elementDefault(t reflect.Type) reflect.Value {
	switch t {
	case reflect.TypeFor[Link]():
		return reflect.ValueOf(Link{Bind: "transceiver", TPS: 200, Window: 10,
			EnquireLink: 30 * time.Second, RespTimeout: 5 * time.Second})
	case reflect.TypeFor[Replica]():
		return reflect.ValueOf(Replica{SyncInterval: time.Second})
	case reflect.TypeFor[Carrier]():
		return reflect.ValueOf(Carrier{Timeout: 10 * time.Second})
	}
	return reflect.Zero(t)
}

// Load reads the file at path, replaces ${NAME} references from the environment, applies
// the defaults and validates the result.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, os.Getenv)
}

// Parse is Load for a file's contents; getenv looks up variables (nil: every variable is
// unset).
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		if line := tabIndented(data, err); line > 0 {
			return nil, fmt.Errorf("config: line %d: found a tab character; YAML indents with spaces, not tabs (%w)", line, err)
		}
		if bytes.Contains(data, []byte("${")) {
			// { and } end a plain value inside [ ] and { }: {token: ${X}} is not YAML.
			return nil, fmt.Errorf("config: %w (inside [ ] or { }, quote a reference: \"${NAME}\")", err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: line %d: the file holds more than one YAML document", extra.Line)
	}
	c := defaults()
	d := &decoder{getenv: getenv, lines: map[string]int{}}
	if len(root.Content) > 0 {
		d.decode(root.Content[0], &c, "")
	}
	c.lines = d.lines
	for i := range c.SMPP.Server.Accounts {
		if c.SMPP.Server.Accounts[i].MaxBinds == 0 {
			c.SMPP.Server.Accounts[i].MaxBinds = c.SMPP.Server.MaxBinds
		}
	}
	// Validate even after decoding errors (the keys in error kept their defaults), so
	// that one run reports every problem.
	if err := errors.Join(append(d.errs, c.Validate())...); err != nil {
		return nil, err
	}
	return &c, nil
}

// Location is the business day's time zone, as loaded by Validate (UTC before that).
func (c *Config) Location() *time.Location {
	if c.location == nil {
		return time.UTC
	}
	return c.location
}

// Error is one problem with the file, named by its key path ("smpp.links[0].tps").
type Error struct {
	Key  string
	Line int // 0 when not known
	Msg  string
}

func (e *Error) Error() string {
	s := "config: " + e.Key + ": " + e.Msg
	if e.Key == "" {
		s = "config: " + e.Msg
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" (line %d)", e.Line)
	}
	return s
}
