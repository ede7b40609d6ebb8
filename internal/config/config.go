package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/signer"
)

// Config is the whole configuration. Every field works at its zero value
// after Defaults: the zero Config plus Defaults is a valid dev setup but for
// the issuer.
type Config struct {
	Issuer   string   `mapstructure:"issuer"`
	Listen   string   `mapstructure:"listen"`
	DataDir  string   `mapstructure:"data_dir"`
	Ops      Ops      `mapstructure:"ops"`
	Database Database `mapstructure:"database"`
	Platform Platform `mapstructure:"platform"`
	Token    Token    `mapstructure:"token"`
	Signing  Signing  `mapstructure:"signing"`
	Trust    Trust    `mapstructure:"trust"`
	Server   Server   `mapstructure:"server"`
	Log      Log      `mapstructure:"log"`
	Audit    Audit    `mapstructure:"audit"`
	Rules    Rules    `mapstructure:"rules"`
	Tracing  Tracing  `mapstructure:"tracing"`
	Records  Records  `mapstructure:"records"`
	// RateLimit sets the token endpoint's rate limits (ratelimit.go).
	RateLimit RateLimit `mapstructure:"rate_limit"`
	// DPoP tunes DPoP at the token endpoint (dpop.go).
	DPoP DPoP `mapstructure:"dpop"`
	// Console configures the web console (console.go).
	Console Console `mapstructure:"console"`

	// Dev is set by `serve --dev`, not by the file.
	Dev bool `mapstructure:"-"`
	// Dir is the directory of the config file; relative paths resolve against it.
	Dir string `mapstructure:"-"`

	// What Parse found: the file line of every key, the keys it could not
	// read and why. Validate reports those problems with its own.
	lines    map[string]int
	badKeys  map[string]bool
	problems []error
}

// Ops is the separate listener for health and metrics.
type Ops struct {
	Listen string `mapstructure:"listen"`
	Pprof  bool   `mapstructure:"pprof"`
}

// Database selects and tunes the store.
type Database struct {
	Driver           string        `mapstructure:"driver"`
	DSN              string        `mapstructure:"dsn"`
	MaxOpenConns     int           `mapstructure:"max_open_conns"`
	MaxIdleConns     int           `mapstructure:"max_idle_conns"`
	StatementTimeout time.Duration `mapstructure:"statement_timeout"`
}

// Platform names the platform admin org.
type Platform struct {
	Org string `mapstructure:"org"`
}

// Token tunes the token endpoint.
type Token struct {
	DefaultLifetime time.Duration `mapstructure:"default_lifetime"`
	ClockSkew       time.Duration `mapstructure:"clock_skew"`
}

// Signing selects the token signing key.
type Signing struct {
	Algorithm string `mapstructure:"algorithm"`
	KeyFile   string `mapstructure:"key_file"`
	// PublishKeyFiles are keys only published in the JWKS: the next key
	// before it becomes key_file, and retired keys until their tokens expire.
	PublishKeyFiles []string `mapstructure:"publish_key_files"`
	// KEKFile holds the key-encryption key (32 bytes, base64) of signing
	// keys kept in the store; PORTVAKT_SIGNING_KEK, when set, wins. With
	// either, keys live in the store and rotate by themselves.
	KEKFile  string   `mapstructure:"kek_file"`
	Rotation Rotation `mapstructure:"rotation"`
}

// Rotation is the schedule of signing keys kept in the store.
type Rotation struct {
	Interval   time.Duration `mapstructure:"interval"`
	PrePublish time.Duration `mapstructure:"pre_publish"`
}

// Trust is the enterprise certificate trust policy.
type Trust struct {
	Roots           []string   `mapstructure:"roots"`
	Intermediates   []string   `mapstructure:"intermediates"`
	AllowedPolicies []string   `mapstructure:"allowed_policies"`
	Revocation      Revocation `mapstructure:"revocation"`
}

// Revocation switches CRL checking on.
type Revocation struct {
	Enabled  bool     `mapstructure:"enabled"`
	CRLFiles []string `mapstructure:"crl_files"`
}

// Server holds the public listener's limits.
type Server struct {
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	RequestTimeout    time.Duration `mapstructure:"request_timeout"`
	// MaxConnections caps the public listener's open connections (default
	// 4096): past it, the oldest idle keep-alive connection is closed.
	MaxConnections int `mapstructure:"max_connections"`
}

// Log selects the log format and level.
type Log struct {
	Format string `mapstructure:"format"`
	Level  string `mapstructure:"level"`
}

// Audit sets how long issued-token rows are kept and how they are purged.
type Audit struct {
	Retention     time.Duration `mapstructure:"retention"`
	PurgeInterval time.Duration `mapstructure:"purge_interval"`
	PurgeBatch    int           `mapstructure:"purge_batch"`
}

// Rules tunes the in-memory access-rules cache.
type Rules struct {
	PollInterval time.Duration `mapstructure:"poll_interval"`
}

// Tracing configures the OTLP trace exporter; off when Endpoint is empty.
type Tracing struct {
	Endpoint    string  `mapstructure:"endpoint"`
	Insecure    bool    `mapstructure:"insecure"`
	SampleRatio float64 `mapstructure:"sample_ratio"`
}

// DefaultOpsListen is the ops listener's default address: the public
// listener's default port plus one, away from Prometheus's own 9090.
const DefaultOpsListen = "127.0.0.1:8081"

// Defaults fills every unset field with its safe default.
func (c *Config) Defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defD := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Listen, "127.0.0.1:8080")
	def(&c.Ops.Listen, DefaultOpsListen)
	def(&c.Database.Driver, "sqlite")
	if c.Dev {
		def(&c.DataDir, ".portvakt-dev")
		def(&c.Issuer, "http://"+c.Listen+"/")
		def(&c.Log.Format, "text")
	}
	def(&c.DataDir, "data")
	def(&c.Log.Format, "json")
	def(&c.Log.Level, "info")
	def(&c.Signing.Algorithm, "RS256")
	defD(&c.Signing.Rotation.Interval, 90*24*time.Hour)
	defD(&c.Signing.Rotation.PrePublish, 24*time.Hour)
	defD(&c.Token.DefaultLifetime, 120*time.Second)
	defD(&c.Token.ClockSkew, 10*time.Second)
	defD(&c.Server.ReadHeaderTimeout, 5*time.Second)
	defD(&c.Server.ReadTimeout, 10*time.Second)
	defD(&c.Server.WriteTimeout, 15*time.Second)
	defD(&c.Server.IdleTimeout, 120*time.Second)
	defD(&c.Server.RequestTimeout, 5*time.Second)
	defD(&c.Database.StatementTimeout, 3*time.Second)
	defD(&c.Audit.Retention, 90*24*time.Hour)
	defD(&c.Audit.PurgeInterval, time.Minute)
	if c.Audit.PurgeBatch == 0 {
		c.Audit.PurgeBatch = 1000
	}
	defD(&c.Rules.PollInterval, 500*time.Millisecond)
	c.Console.defaults()
	if c.Database.DSN == "" && c.Database.Driver == "sqlite" {
		c.Database.DSN = filepath.Join(c.DataDir, "portvakt.db")
	}
	if c.Tracing.SampleRatio == 0 {
		c.Tracing.SampleRatio = 1
	}
	if c.Server.MaxConnections == 0 {
		c.Server.MaxConnections = DefaultMaxConnections
	}
	c.RateLimit.defaults(c.Dev)
	c.DPoP.defaults()
}

// Validate reports every problem at once, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Issuer == "" {
		bad("issuer", "is required (for example https://auth.example.no/)")
	} else if u, err := url.Parse(c.Issuer); err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("issuer", "must be an absolute URL without query or fragment, got %q", c.Issuer)
	} else {
		if !strings.HasSuffix(u.Path, "/") {
			bad("issuer", "must end with '/' so that endpoint paths append to it, got %q", c.Issuer)
		}
		if u.Scheme != "https" && !(c.Dev || isLoopback(u.Hostname())) {
			bad("issuer", "must use https outside dev and loopback, got %q", c.Issuer)
		}
	}
	for key, addr := range map[string]string{"listen": c.Listen, "ops.listen": c.Ops.Listen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "must be host:port, got %q", addr)
		}
	}
	if c.Listen == c.Ops.Listen {
		bad("ops.listen", "must differ from listen (%q): ops endpoints never share the public port", c.Listen)
	}
	switch c.Database.Driver {
	case "sqlite", "postgres":
	default:
		bad("database.driver", "must be sqlite or postgres, got %q", c.Database.Driver)
	}
	if c.Database.DSN == "" {
		bad("database.dsn", "is required for driver %q (PORTVAKT_DATABASE_DSN)", c.Database.Driver)
	}
	if c.Database.MaxOpenConns < 0 || c.Database.MaxIdleConns < 0 {
		bad("database.max_open_conns", "pool sizes cannot be negative")
	}
	if c.Platform.Org == "" {
		bad("platform.org", "is required: the organisation number of the platform admin")
	} else if !norid.ValidOrg(c.Platform.Org) {
		bad("platform.org", "%q is not a valid organisation number (9 digits, mod-11)", c.Platform.Org)
	}
	switch c.Signing.Algorithm {
	case "RS256", "ES256":
	default:
		bad("signing.algorithm", "must be RS256 or ES256, got %q", c.Signing.Algorithm)
	}
	// A NEXT key reaches every replica within a poll and every verifier
	// within the JWKS max-age: only then may it sign.
	if minPre := signer.JWKSMaxAge + c.Rules.PollInterval; c.Signing.Rotation.PrePublish < minPre {
		bad("signing.rotation.pre_publish", "must be at least the JWKS max-age plus rules.poll_interval (%s), got %s", minPre, c.Signing.Rotation.PrePublish)
	}
	if c.Signing.Rotation.Interval < 2*c.Signing.Rotation.PrePublish {
		bad("signing.rotation.interval", "must be at least twice signing.rotation.pre_publish (%s), got %s", c.Signing.Rotation.PrePublish, c.Signing.Rotation.Interval)
	}
	if c.Token.DefaultLifetime < time.Second || c.Token.DefaultLifetime > 2*time.Hour {
		bad("token.default_lifetime", "must be between 1s and 2h, got %s", c.Token.DefaultLifetime)
	}
	if c.Token.ClockSkew < 0 || c.Token.ClockSkew > time.Minute {
		bad("token.clock_skew", "must be between 0 and 1m, got %s", c.Token.ClockSkew)
	}
	if len(c.Trust.Roots) == 0 && !c.Dev {
		bad("trust.roots", "no trust anchors: certificate (x5c) clients cannot authenticate; list PEM files")
	}
	for i, p := range c.Trust.AllowedPolicies {
		if !validOID(p) {
			bad(fmt.Sprintf("trust.allowed_policies[%d]", i), "%q is not a dotted OID", p)
		}
	}
	if c.Audit.Retention < 5*time.Minute {
		bad("audit.retention", "must be at least 5m so replayed assertions stay detectable, got %s", c.Audit.Retention)
	}
	if c.Audit.PurgeBatch < 1 || c.Audit.PurgeBatch > 100000 {
		bad("audit.purge_batch", "must be between 1 and 100000, got %d", c.Audit.PurgeBatch)
	}
	if c.Rules.PollInterval <= 0 || c.Rules.PollInterval > time.Second {
		bad("rules.poll_interval", "must be in (0, 1s] so other replicas see changes within a second, got %s", c.Rules.PollInterval)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "must be json or text, got %q", c.Log.Format)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		bad("tracing.sample_ratio", "must be between 0 and 1, got %v", c.Tracing.SampleRatio)
	}
	c.Server.validateConnections(bad)
	c.RateLimit.validate(bad)
	c.DPoP.validate(bad)
	c.Console.validate(bad)
	errs = append(errs, c.Records.validate(c)...)
	return errors.Join(append(append([]error(nil), c.problems...), c.located(errs)...)...)
}

// Check is Validate plus the files the configuration names: every problem
// Parse found, every invalid value and every missing trust or key file, in
// one list.
func (c *Config) Check() error {
	err := c.Validate()
	files := c.located(c.missingFiles())
	if len(files) == 0 {
		return err
	}
	if err == nil {
		return errors.Join(files...)
	}
	return errors.Join(append([]error{err}, files...)...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validOID(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// Path resolves p against the config file's directory (absolute p is kept).
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// Load reads the YAML file (optional when empty) and PORTVAKT_* environment
// variables, applies defaults and checks it all (Check). dev marks `serve
// --dev`.
func Load(file string, dev bool) (*Config, error) {
	c, err := Read(file, dev)
	if c == nil {
		return nil, err
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// Read is Load without Check, for callers that adjust the config first. When
// the file is YAML but some keys cannot be read, it returns the config (those
// keys at their defaults) and the problems; Check and Validate report them
// again, with the rest.
func Read(file string, dev bool) (*Config, error) {
	if file == "" {
		return Parse(nil, "", dev)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir := ""
	if abs, err := filepath.Abs(file); err == nil {
		dir = filepath.Dir(abs)
	}
	c, err := Parse(b, dir, dev)
	if err != nil {
		return c, fmt.Errorf("config: %s:\n%w", file, err)
	}
	return c, nil
}

// Parse reads YAML (may be empty) and PORTVAKT_* environment variables and
// applies defaults. dir is where relative paths resolve.
//
// A file that is not YAML (or sets a key twice) returns no config and a
// *SyntaxError or *Problem with the line. Otherwise every unknown key, value
// of the wrong type and duration without a unit is a *Problem; the config
// comes back with those keys at their defaults, and the error lists them all.
func Parse(b []byte, dir string, dev bool) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	v.SetEnvPrefix("PORTVAKT")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	bindEnv(v, reflect.TypeOf(Config{}), "")
	c := &Config{Dev: dev, Dir: dir}
	var lines map[string]int
	if len(b) > 0 {
		idx, dups, err := yamlSyntax(b)
		if err != nil {
			return nil, err
		}
		if len(dups) > 0 {
			return nil, errors.Join(dups...)
		}
		lines = idx
		if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
			return nil, &SyntaxError{Msg: err.Error()}
		}
	}
	settings := v.AllSettings()
	ch := &checker{lines: lines, bad: map[string]bool{}}
	ch.checkStruct(settings, reflect.TypeOf(Config{}), "")
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           c,
		WeaklyTypedInput: true, // as viper decodes: "true" and 8080 from the environment
		ErrorUnused:      true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
			jsonRawHook,
		),
	})
	if err != nil {
		return nil, err
	}
	if err := dec.Decode(settings); err != nil {
		// The checker removes what it knows cannot decode; this is the rest.
		ch.problems = append(ch.problems, err)
	}
	c.Defaults()
	c.lines, c.badKeys, c.problems = lines, ch.bad, ch.problems
	return c, errors.Join(ch.problems...)
}

// bindEnv registers every scalar key so that PORTVAKT_* variables reach
// Unmarshal even when the file does not mention the key.
func bindEnv(v *viper.Viper, t reflect.Type, prefix string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" || tag == "records" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		if f.Type.Kind() == reflect.Struct {
			bindEnv(v, f.Type, key)
			continue
		}
		_ = v.BindEnv(key)
	}
}

var rawType = reflect.TypeOf(json.RawMessage(nil))

// jsonRawHook lets YAML maps (a JWK) decode into json.RawMessage fields.
func jsonRawHook(from, to reflect.Type, data any) (any, error) {
	if to != rawType {
		return data, nil
	}
	b, err := json.Marshal(stringKeys(data))
	if err != nil {
		return nil, err
	}
	return json.RawMessage(b), nil
}

func stringKeys(v any) any {
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			m[fmt.Sprint(k)] = stringKeys(val)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			m[k] = stringKeys(val)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = stringKeys(val)
		}
		return out
	}
	return v
}
