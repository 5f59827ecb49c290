package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// checker collects Validate's findings, each named by key path.
type checker struct {
	c    *Config
	errs []error
}

func (k *checker) add(key, format string, args ...any) {
	k.errs = append(k.errs, &Error{Key: key, Line: k.c.lines[key], Msg: fmt.Sprintf(format, args...)})
}

func (k *checker) required(key, value string) bool {
	if value == "" {
		k.add(key, "required")
		return false
	}
	return true
}

func (k *checker) oneOf(key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	k.add(key, "%q: must be %s", value, strings.Join(allowed, " or "))
}

func (k *checker) positive(key string, n int64) {
	if n <= 0 {
		k.add(key, "must be > 0")
	}
}

func (k *checker) duration(key string, d time.Duration) {
	if d <= 0 {
		k.add(key, "must be > 0")
	}
}

func (k *checker) digits(key, value string) {
	if value == "" || strings.Trim(value, "0123456789") != "" {
		k.add(key, "%q: must be digits only", value)
	}
}

// address checks host:port; an empty value is checked only when required.
func (k *checker) address(key, value string, required bool) {
	if value == "" {
		if required {
			k.add(key, "required")
		}
		return
	}
	_, port, err := net.SplitHostPort(value)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		k.add(key, "%q: must be host:port, e.g. 127.0.0.1:2775", value)
	}
}

// url checks an optional http or https URL.
func (k *checker) url(key, value string) {
	if value == "" {
		return
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		k.add(key, "%q: must be an http:// or https:// URL", value)
	}
}

// Validate checks every value and returns all problems found, joined, each an *Error
// naming its key. It also loads Timezone for Location. Parse and Load call it; call it
// again after changing a Config in code. It upper-cases database.synchronous.
func (c *Config) Validate() error {
	k := &checker{c: c}
	c.validateDatabase(k)
	c.Database.Synchronous = strings.ToUpper(c.Database.Synchronous)
	k.oneOf("database.synchronous", c.Database.Synchronous, "FULL", "NORMAL", "EXTRA", "OFF")
	c.Database.WriterCPU = strings.ToLower(c.Database.WriterCPU)
	k.oneOf("database.writer_cpu", c.Database.WriterCPU, WriterCPUOff, WriterCPUOn)
	c.Database.ReceiptSpool = strings.ToLower(c.Database.ReceiptSpool)
	k.oneOf("database.receipt_spool", c.Database.ReceiptSpool, ReceiptSpoolOn, ReceiptSpoolOff)
	c.Database.MOSpool = strings.ToLower(c.Database.MOSpool)
	k.oneOf("database.mo_spool", c.Database.MOSpool, ReceiptSpoolOn, ReceiptSpoolOff)
	if c.Database.Groups < 1 || c.Database.Groups > 64 {
		k.add("database.groups", "%d: must be 1 to 64", c.Database.Groups)
	}
	c.validateReplicas(k)
	k.oneOf("log.level", c.Log.Level, "trace", "debug", "info", "warn", "error")
	k.oneOf("log.format", c.Log.Format, "json", "console")

	k.address("http.listen", c.HTTP.Listen, true)
	names, values := map[string]int{}, map[string]int{}
	for i, t := range c.HTTP.Tokens {
		key := fmt.Sprintf("http.tokens[%d]", i)
		if k.required(key+".name", t.Name) {
			if j, dup := names[t.Name]; dup {
				k.add(key+".name", "%q is also the name of http.tokens[%d]", t.Name, j)
			}
			names[t.Name] = i
		}
		if t.Token != "" {
			if j, dup := values[t.Token]; dup {
				k.add(key+".token", "the same token as http.tokens[%d]", j)
			}
			values[t.Token] = i
		}
		k.oneOf(key+".role", t.Role, "operator", "auditor")
	}
	c.validateTiers(k)
	c.validateTariff(k)
	k.positive("http.max_body_bytes", c.HTTP.MaxBodyBytes)
	k.duration("http.read_timeout", c.HTTP.ReadTimeout)
	k.duration("http.write_timeout", c.HTTP.WriteTimeout)

	if k.required("currency", c.Currency) && !isUpper3(c.Currency) {
		k.add("currency", "%q: must be an ISO 4217 code, three upper-case letters such as KES", c.Currency)
	}
	if k.required("shortcode", c.Shortcode) {
		k.digits("shortcode", c.Shortcode)
	}
	if k.required("country_code", c.CountryCode) {
		k.digits("country_code", c.CountryCode)
		if len(c.CountryCode) > 3 || strings.HasPrefix(c.CountryCode, "0") {
			k.add("country_code", "%q: must be a calling code such as 254", c.CountryCode)
		}
	}
	c.location = nil
	if k.required("timezone", c.Timezone) {
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			k.add("timezone", "%q: not a known time zone such as Africa/Nairobi", c.Timezone)
		}
		c.location = loc
	}

	k.positive("limits.min_amount", c.Limits.MinAmount)
	k.positive("limits.max_amount", c.Limits.MaxAmount)
	k.positive("limits.daily_max", c.Limits.DailyMax)
	if c.Limits.MinAmount > c.Limits.MaxAmount {
		k.add("limits.min_amount", "%d is more than limits.max_amount %d", c.Limits.MinAmount, c.Limits.MaxAmount)
	}
	if c.Limits.MaxAmount > c.Limits.DailyMax {
		k.add("limits.max_amount", "%d is more than limits.daily_max %d", c.Limits.MaxAmount, c.Limits.DailyMax)
	}

	c.validateSMPP(k)

	if c.OTP.Digits < 4 || c.OTP.Digits > 10 {
		k.add("otp.digits", "%d: must be 4..10", c.OTP.Digits)
	}
	k.duration("otp.ttl", c.OTP.TTL)
	k.positive("otp.max_attempts", int64(c.OTP.MaxAttempts))
	k.positive("otp.max_resends", int64(c.OTP.MaxResends))
	k.duration("otp.resend_interval", c.OTP.ResendInterval)
	if c.OTP.Secret != "" && !goodSecret(c.OTP.Secret) {
		// Never echo the secret itself.
		k.add("otp.secret", "must be at least 32 hex digits or 32 characters (got %d characters)", len(strings.TrimSpace(c.OTP.Secret)))
	}

	if k.required("ussd.service_code", c.USSD.ServiceCode) && !serviceCode(c.USSD.ServiceCode) {
		k.add("ussd.service_code", "%q: must look like *384# or *384*1#", c.USSD.ServiceCode)
	}
	k.duration("ussd.session_timeout", c.USSD.SessionTimeout)
	c.validateCallbacks(k, "ussd.callbacks", c.USSD.Callbacks)

	if k.required("ivr.number", c.IVR.Number) {
		k.digits("ivr.number", c.IVR.Number)
	}
	k.url("ivr.gateway.url", c.IVR.Gateway.URL)
	c.validateCallbacks(k, "ivr.callbacks", c.IVR.Callbacks)

	carriers := map[string]int{}
	if c.Fraud.WrongCodesLock < 0 {
		k.add("fraud.wrong_codes_lock", "%d: must be 0 (off) or more", c.Fraud.WrongCodesLock)
	}
	if c.Fraud.WrongCodesPerOrigin < 0 {
		k.add("fraud.wrong_codes_per_origin", "%d: must be 0 (wrong_codes_lock - 1) or more", c.Fraud.WrongCodesPerOrigin)
	}
	if c.Fraud.WrongCodesLock > 0 {
		k.duration("fraud.lock_window", c.Fraud.LockWindow)
		k.duration("fraud.lock_duration", c.Fraud.LockDuration)
	}
	if c.Fraud.RequestsPerMinute < 0 {
		k.add("fraud.requests_per_minute", "%d: must be 0 (off) or more", c.Fraud.RequestsPerMinute)
	}
	if c.Fraud.SIMSwap.URL != "" {
		k.url("fraud.sim_swap.url", c.Fraud.SIMSwap.URL)
		if c.Fraud.SIMSwap.Threshold < 0 {
			k.add("fraud.sim_swap.threshold", "%d: must be 0 or more", c.Fraud.SIMSwap.Threshold)
		}
		k.duration("fraud.sim_swap.max_age", c.Fraud.SIMSwap.MaxAge)
		k.duration("fraud.sim_swap.timeout", c.Fraud.SIMSwap.Timeout)
		k.oneOf("fraud.sim_swap.action", c.Fraud.SIMSwap.Action, "refuse", "freeze")
		k.oneOf("fraud.sim_swap.on_error", c.Fraud.SIMSwap.OnError, "refuse", "allow")
	}
	c.validateRequests(k)
	c.validateEscrow(k)
	c.validateRisk(k)
	for i, ca := range c.Airtime.Carriers {
		key := fmt.Sprintf("airtime.carriers[%d]", i)
		if k.required(key+".name", ca.Name) {
			if j, dup := carriers[ca.Name]; dup {
				k.add(key+".name", "%q is also the name of airtime.carriers[%d]", ca.Name, j)
			}
			carriers[ca.Name] = i
		}
		for j, p := range ca.Prefixes {
			k.digits(fmt.Sprintf("%s.prefixes[%d]", key, j), p)
		}
		k.url(key+".url", ca.URL)
		k.duration(key+".timeout", ca.Timeout)
	}

	c.validateWebhooks(k)

	for name, text := range c.Messages {
		if name == "" {
			k.add("messages", "a message key is empty")
		} else if strings.TrimSpace(text) == "" {
			k.add("messages."+name, "template is empty")
		}
	}
	return errors.Join(k.errs...)
}

func (c *Config) validateSMPP(k *checker) {
	links := map[string]int{}
	for i, l := range c.SMPP.Links {
		key := fmt.Sprintf("smpp.links[%d]", i)
		if k.required(key+".name", l.Name) {
			if j, dup := links[l.Name]; dup {
				k.add(key+".name", "%q is also the name of smpp.links[%d]", l.Name, j)
			}
			links[l.Name] = i
		}
		k.address(key+".address", l.Address, true)
		k.required(key+".system_id", l.SystemID)
		k.oneOf(key+".bind", l.Bind, "transceiver", "transmitter+receiver")
		for j, p := range l.Prefixes {
			k.digits(fmt.Sprintf("%s.prefixes[%d]", key, j), p)
		}
		k.positive(key+".tps", int64(l.TPS))
		k.positive(key+".window", int64(l.Window))
		k.duration(key+".enquire_link", l.EnquireLink)
		k.duration(key+".resp_timeout", l.RespTimeout)
	}
	for i, l := range c.SMPP.Links {
		key := fmt.Sprintf("smpp.links[%d].failover", i)
		if l.Failover == "" {
			continue
		}
		if l.Failover == l.Name {
			k.add(key, "%q: a link cannot fail over to itself", l.Failover)
		} else if _, ok := links[l.Failover]; !ok {
			k.add(key, "%q: no link has that name", l.Failover)
		}
	}

	s := c.SMPP.Server
	k.address("smpp.server.listen", s.Listen, false)
	k.positive("smpp.server.max_binds", int64(s.MaxBinds))
	k.duration("smpp.server.pin_grace", s.PinGrace)
	accounts := map[string]int{}
	for i, a := range s.Accounts {
		key := fmt.Sprintf("smpp.server.accounts[%d]", i)
		if k.required(key+".system_id", a.SystemID) {
			if j, dup := accounts[a.SystemID]; dup {
				k.add(key+".system_id", "%q is also the system_id of smpp.server.accounts[%d]", a.SystemID, j)
			}
			accounts[a.SystemID] = i
		}
		k.positive(key+".max_binds", int64(a.MaxBinds))
		for j, p := range a.Prefixes {
			k.digits(fmt.Sprintf("%s.prefixes[%d]", key, j), p)
		}
	}
	k.address("smpp.demo_smsc.listen", c.SMPP.DemoSMSC.Listen, false)
	k.address("smpp.demo_smsc.phone_api", c.SMPP.DemoSMSC.PhoneAPI, false)
	// The demo SMSC shows every SMS, codes included, to whoever reaches its phone API,
	// and has no sign-in: loopback only (the simulator refuses anything else too).
	for _, d := range []struct{ key, addr string }{
		{"smpp.demo_smsc.listen", c.SMPP.DemoSMSC.Listen}, {"smpp.demo_smsc.phone_api", c.SMPP.DemoSMSC.PhoneAPI},
	} {
		if host, _, err := net.SplitHostPort(d.addr); err == nil && !loopbackHost(host) {
			k.add(d.key, "%q: must be on loopback (127.0.0.1, [::1] or localhost): the demo SMSC shows every SMS, codes included, to whoever reaches it", d.addr)
		}
	}
}

// MinCallbackSecret is the shortest callbacks secret accepted: beyond the allowed
// networks it is all that tells the gateway from anyone else, so it must not be
// guessable.
const MinCallbackSecret = 16

// validateCallbacks checks ussd.callbacks or ivr.callbacks (key).
func (c *Config) validateCallbacks(k *checker, key string, cb Callbacks) {
	k.address(key+".listen", cb.Listen, false)
	// Port 0 picks a free port, so two :0 listeners do not clash.
	if cb.Listen != "" && cb.Listen == c.HTTP.Listen && !strings.HasSuffix(cb.Listen, ":0") {
		k.add(key+".listen", "%q is also http.listen; leave it empty to take callbacks on the API's listener", cb.Listen)
	}
	if len(cb.Allow) == 0 {
		// An empty list would refuse every callback; saying so beats a silent outage.
		k.add(key+".allow", `must list at least one source network; ["0.0.0.0/0", "::/0"] allows any (then set %s.secret)`, key)
	}
	for i, a := range cb.Allow {
		if _, err := netip.ParsePrefix(a); err != nil {
			k.add(fmt.Sprintf("%s.allow[%d]", key, i), "%q: must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (one address: 10.0.0.7/32)", a)
		}
	}
	if n := utf8.RuneCountInString(cb.Secret); cb.Secret != "" && n < MinCallbackSecret {
		// Never echo the secret itself.
		k.add(key+".secret", "must be at least %d characters (got %d)", MinCallbackSecret, n)
	}
}

// Limits of the webhooks section: the contract's 10 s for an answer and 24 hours of
// retries, and a bound on the workers (each holds a connection).
const (
	MaxWebhookTimeout  = 10 * time.Second
	MinWebhookRetryFor = 24 * time.Hour
	MaxWebhookWorkers  = 256
)

// validateWebhooks checks the webhooks section.
func (c *Config) validateWebhooks(k *checker) {
	w := c.Webhooks
	if w.Timeout <= 0 || w.Timeout > MaxWebhookTimeout {
		k.add("webhooks.timeout", "%v: must be > 0 and at most %v (a delivery not answered within 10 s is retried)",
			w.Timeout, MaxWebhookTimeout)
	}
	if w.RetryFor < MinWebhookRetryFor {
		k.add("webhooks.retry_for", "%v: must be at least %v (deliveries are retried for at least 24 hours)",
			w.RetryFor, MinWebhookRetryFor)
	}
	if w.Workers < 2 || w.Workers > MaxWebhookWorkers {
		// One worker would be one merchant's whenever its endpoint hangs, holding up all others.
		k.add("webhooks.workers", "%d: must be 2..%d (a merchant whose endpoint hangs never holds them all)",
			w.Workers, MaxWebhookWorkers)
	}
	k.positive("webhooks.max_failures_before_pause", int64(w.MaxFailuresBeforePause))
	k.duration("webhooks.pause", w.Pause)
}

// onlyLoopback reports whether every network in allow is on this machine.
func onlyLoopback(allow []string) bool {
	for _, a := range allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return false
		}
		p = p.Masked()
		if !p.Addr().IsLoopback() || (p.Addr().Is4() && p.Bits() < 8) || (p.Addr().Is6() && p.Bits() < 128) {
			return false
		}
	}
	return true
}

// Warnings lists what is valid but probably not meant: credentials left empty (usually
// an unset environment variable), which disable what they guard, and values beyond what
// SMPP 3.4 allows. serve logs them at start-up.
func (c *Config) Warnings() []string {
	var w []string
	if len(c.HTTP.Tokens) == 0 {
		w = append(w, "http.tokens: none configured; every /api/v1 request is refused")
	}
	for i, t := range c.HTTP.Tokens {
		switch n := utf8.RuneCountInString(t.Token); {
		case n == 0:
			w = append(w, fmt.Sprintf("http.tokens[%d] (%s): token is empty; it is disabled", i, t.Name))
		case n < 16:
			w = append(w, fmt.Sprintf("http.tokens[%d] (%s): token is only %d characters; use at least 32 random ones", i, t.Name, n))
		}
	}
	if len(c.SMPP.Links) == 0 {
		w = append(w, "smpp.links: none configured; no SMS can be sent or received")
	}
	if d := c.SMPP.DemoSMSC.Listen; d != "" {
		var real []string
		for _, l := range c.SMPP.Links {
			if l.Address != d {
				real = append(real, l.Name)
			}
		}
		if len(real) > 0 {
			w = append(w, fmt.Sprintf("smpp.demo_smsc: THE DEMO SMSC RUNS BESIDE REAL CARRIER LINKS (%s): anyone on this machine "+
				"can read every SMS sent through it, codes included, and send SMS as any phone; set smpp.demo_smsc.listen "+
				"empty in production", strings.Join(real, ", ")))
		}
	}
	for i, l := range c.SMPP.Links {
		key := fmt.Sprintf("smpp.links[%d] (%s)", i, l.Name)
		// serve gives a link to the demo SMSC without a password a random one.
		if l.Password == "" && (c.SMPP.DemoSMSC.Listen == "" || l.Address != c.SMPP.DemoSMSC.Listen) {
			w = append(w, key+": password is empty")
		}
		if len(l.SystemID) > 15 {
			w = append(w, key+": system_id is longer than the 15 characters SMPP 3.4 allows")
		}
		if len(l.Password) > 8 {
			w = append(w, key+": password is longer than the 8 characters SMPP 3.4 allows; some SMSCs truncate or refuse it")
		}
		if len(l.SystemType) > 12 {
			w = append(w, key+": system_type is longer than the 12 characters SMPP 3.4 allows")
		}
	}
	if c.SMPP.Server.Listen != "" {
		for i, a := range c.SMPP.Server.Accounts {
			if a.Password == "" {
				w = append(w, fmt.Sprintf("smpp.server.accounts[%d] (%s): password is empty; it is disabled", i, a.SystemID))
			} else if len(a.Prefixes) == 0 {
				w = append(w, fmt.Sprintf("smpp.server.accounts[%d] (%s): no prefixes; every submit_sm it sends is refused", i, a.SystemID))
			}
		}
	}
	for _, cb := range []struct {
		key string
		c   Callbacks
	}{{"ussd.callbacks", c.USSD.Callbacks}, {"ivr.callbacks", c.IVR.Callbacks}} {
		if cb.c.Secret == "" && !onlyLoopback(cb.c.Allow) {
			w = append(w, cb.key+": allow admits sources beyond this machine and secret is empty; anyone on those networks can act as any number")
		}
	}
	if c.IVR.Gateway.URL != "" && c.IVR.Gateway.Token == "" {
		w = append(w, "ivr.gateway.token: empty; calls to the voice gateway carry no token")
	}
	for i, ca := range c.Airtime.Carriers {
		if ca.URL != "" && ca.Token == "" {
			w = append(w, fmt.Sprintf("airtime.carriers[%d] (%s): token is empty; requests carry no token", i, ca.Name))
		}
	}
	return w
}

func isUpper3(s string) bool {
	return len(s) == 3 && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}

// serviceCode matches USSD codes such as *384# and *384*12#.
func serviceCode(s string) bool {
	if len(s) < 3 || s[0] != '*' || s[len(s)-1] != '#' {
		return false
	}
	body := s[1 : len(s)-1]
	for _, part := range strings.Split(body, "*") {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return false
		}
	}
	return true
}

// goodSecret is otp.ParseSecret's rule, repeated here so that config does not depend on
// otp and its database; config's tests check that the two agree.
// 32+ hex digits decode to 16+ bytes and any other 32+ characters are used raw, so the
// rule comes down to length.
func goodSecret(s string) bool { return len(strings.TrimSpace(s)) >= 32 }

// loopbackHost reports whether host (of a host:port) is a loopback IP or "localhost"; ""
// (every interface) is not. It is smscsim.LoopbackHost, repeated so that config does not
// depend on the simulator.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateReplicas checks database.replicas: each a file:// or s3:// URL, none twice.
// A replica is named by its scheme, bucket or host, and path, as /healthz names it
// (replica.Config.Name); two entries with one name would be one replica written twice.
func (c *Config) validateReplicas(k *checker) {
	seen := map[string]int{}
	for i, r := range c.Database.Replicas {
		key := fmt.Sprintf("database.replicas[%d]", i)
		k.duration(key+".sync_interval", r.SyncInterval)
		if !k.required(key+".url", r.URL) {
			continue
		}
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			k.add(key+".url", "not a URL: %v", err)
			continue
		case u.Scheme == "file":
			if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
				k.add(key+".url", "%q: a file replica is file:///absolute/folder", r.URL)
			}
		case u.Scheme == "s3":
			if u.Host == "" {
				k.add(key+".url", "%q: an S3 replica is s3://bucket/path", r.URL)
			}
			if u.User != nil {
				k.add(key+".url", "credentials in the URL: put them in access_key_id and secret_access_key, from ${NAME}")
			}
		default:
			k.add(key+".url", "%q: must be file:///folder or s3://bucket/path", r.URL)
		}
		name := u.Scheme + "://" + u.Host + path.Clean("/"+u.Path)
		if j, ok := seen[name]; ok {
			k.add(key+".url", "%s is already database.replicas[%d]: each replica once", name, j)
			continue
		}
		seen[name] = i
	}
}

// validateRequests checks requests: the ttls within [MinRequestTTL, max_ttl], the caps
// 0 (off) or more.
func (c *Config) validateRequests(k *checker) {
	r := c.Requests
	switch {
	case r.MaxTTL < MinRequestTTL:
		k.add("requests.max_ttl", "%v: must be at least %v", r.MaxTTL, MinRequestTTL)
	case r.DefaultTTL < MinRequestTTL || r.DefaultTTL > r.MaxTTL:
		k.add("requests.default_ttl", "%v: must be from %v to requests.max_ttl (%v)", r.DefaultTTL, MinRequestTTL, r.MaxTTL)
	}
	if r.PerMerchantPerMinute < 0 {
		k.add("requests.per_merchant_per_minute", "%d: must be 0 (off) or more", r.PerMerchantPerMinute)
	}
	if r.PerNumberPerDay < 0 {
		k.add("requests.per_number_per_day", "%d: must be 0 (off) or more", r.PerNumberPerDay)
	}
}
