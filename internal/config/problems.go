package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v4"
)

// Problem is one thing wrong with the configuration, named by its key as the
// file spells it ("token.default_lifetime", "records.clients[0].client_id").
// Line is where the key is in the YAML file (0 when it is not there: a
// default, or a value from the environment); Env is the PORTVAKT_* variable
// the value came from, if any.
type Problem struct {
	Key  string
	Line int
	Env  string
	Msg  string
}

func (p *Problem) Error() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		if p.Env != "" {
			fmt.Fprintf(&b, " (%s)", p.Env)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// SyntaxError is a file that is not YAML; Line and Column point at the
// problem itself, not at the start of the block around it.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return "YAML: " + e.Msg
	}
	return fmt.Sprintf("line %d, column %d: YAML: %s", e.Line, e.Column, e.Msg)
}

// yamlSyntax parses b to find syntax errors with the line of the problem
// (viper's YAML parser reports the line where the enclosing block starts),
// duplicate keys, and the line of every key: index maps "ops.listen" and
// "records.clients[0].client_id" (keys lower-cased, as viper reads them) to
// their lines.
func yamlSyntax(b []byte) (index map[string]int, dups []error, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		var le *yaml.LoadError
		if errors.As(err, &le) {
			msg := le.Message
			if le.ContextMsg != "" && le.ContextMark.Line > 0 && le.ContextMark.Line != le.Mark.Line {
				msg += fmt.Sprintf(" (%s that starts at line %d)", le.ContextMsg, le.ContextMark.Line)
			}
			return nil, nil, &SyntaxError{Line: le.Mark.Line, Column: le.Mark.Column, Msg: msg}
		}
		return nil, nil, &SyntaxError{Msg: err.Error()}
	}
	index = map[string]int{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				key := join(path, strings.ToLower(k.Value))
				if first, ok := index[key]; ok {
					dups = append(dups, &Problem{Key: key, Line: k.Line, Msg: fmt.Sprintf("is set twice (first at line %d)", first)})
					continue
				}
				index[key] = k.Line
				walk(n.Content[i+1], key)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				key := fmt.Sprintf("%s[%d]", path, i)
				index[key] = c.Line
				walk(c, key)
			}
		}
	}
	walk(&doc, "")
	return index, dups, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var durationType = reflect.TypeOf(time.Duration(0))

// checker walks the merged settings (file and environment, as viper holds
// them) against the Config struct before they are decoded. It reports
// unknown keys with the nearest known one, values of the wrong type with the
// type expected, and durations without a unit, and removes each bad value so
// that decoding goes on and the rest of the file is still checked.
type checker struct {
	lines    map[string]int
	problems []error
	bad      map[string]bool // keys with a problem: validation skips them
}

func (c *checker) report(key, format string, args ...any) {
	p := &Problem{Key: key, Line: c.lines[key], Msg: fmt.Sprintf(format, args...)}
	if !strings.Contains(key, "[") {
		if env := envName(key); os.Getenv(env) != "" {
			p.Env, p.Line = env, 0
		}
	}
	c.problems = append(c.problems, p)
	c.bad[key] = true
}

// envName is the variable that sets key: PORTVAKT_ and the key upper-cased
// with "." as "_".
func envName(key string) string {
	return "PORTVAKT_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// fields lists a struct's keys by their mapstructure names.
func fields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		out[tag] = f.Type
	}
	return out
}

// checkStruct checks m against t and deletes what cannot be decoded.
func (c *checker) checkStruct(m map[string]any, t reflect.Type, path string) {
	known := fields(t)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// In file order (keys from the environment first), so problems read top down.
	sort.Slice(keys, func(i, j int) bool {
		li, lj := c.lines[join(path, keys[i])], c.lines[join(path, keys[j])]
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		key := join(path, k)
		ft, ok := known[k]
		if !ok {
			c.report(key, "unknown key%s", suggest(k, path, known))
			delete(m, k)
			continue
		}
		if m[k] == nil {
			continue
		}
		if !c.check(m[k], ft, key) {
			delete(m, k)
		}
	}
}

// check reports whether v can be decoded into t, reporting why not.
func (c *checker) check(v any, t reflect.Type, key string) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawType {
		return true // a JWK: any JSON value
	}
	if t == durationType {
		return c.checkDuration(v, key)
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.report(key, "must be a map of keys (%s), got %s", strings.Join(sortedKeys(fields(t)), ", "), describe(v))
			return false
		}
		c.checkStruct(m, t, key)
		return true
	case reflect.Slice:
		switch l := v.(type) {
		case []any:
			ok := true
			for i, e := range l {
				if e == nil {
					continue
				}
				if !c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", key, i)) {
					ok = false
				}
			}
			return ok
		case string:
			if t.Elem().Kind() == reflect.String {
				return true // "a,b" from the environment
			}
		}
		c.report(key, "must be a list, got %s", describe(v))
		return false
	case reflect.String:
		switch v.(type) {
		case string, int, int64, uint64, float64, bool:
			return true
		}
		c.report(key, "must be a string, got %s", describe(v))
		return false
	case reflect.Bool:
		switch s := v.(type) {
		case bool:
			return true
		case string:
			if _, err := strconv.ParseBool(s); err == nil {
				return true
			}
		}
		c.report(key, "must be true or false, got %s", describe(v))
		return false
	case reflect.Int, reflect.Int64:
		switch n := v.(type) {
		case int, int64, uint64:
			return true
		case float64:
			if n == float64(int64(n)) {
				return true
			}
		case string:
			if _, err := strconv.ParseInt(n, 0, 64); err == nil {
				return true
			}
		}
		c.report(key, "must be a whole number, got %s", describe(v))
		return false
	case reflect.Float64:
		switch n := v.(type) {
		case int, int64, uint64, float64:
			return true
		case string:
			if _, err := strconv.ParseFloat(n, 64); err == nil {
				return true
			}
		}
		c.report(key, "must be a number, got %s", describe(v))
		return false
	}
	return true
}

// checkDuration accepts what time.ParseDuration accepts, and 0. A bare
// number would otherwise decode as nanoseconds.
func (c *checker) checkDuration(v any, key string) bool {
	var s string
	switch n := v.(type) {
	case string:
		if _, err := time.ParseDuration(n); err == nil {
			return true
		}
		s = n
	case int, int64, uint64, float64:
		if fmt.Sprint(n) == "0" {
			return true
		}
		s = fmt.Sprint(n)
	default:
		c.report(key, "must be a duration such as 500ms, 10s or 2h, got %s", describe(v))
		return false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		c.report(key, "%s has no unit: write %ss for seconds (units: ms, s, m, h)", s, s)
		return false
	}
	c.report(key, "%q is not a duration: write it like 500ms, 10s or 2h", s)
	return false
}

func describe(v any) string {
	switch t := v.(type) {
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(t)
	case bool:
		return fmt.Sprintf("%v", t)
	case int, int64, uint64, float64:
		return fmt.Sprintf("the number %v", t)
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// suggest names the known key nearest to k at the same level, or where k
// lives when it belongs elsewhere ("pprof" at the top is ops.pprof).
func suggest(k, path string, known map[string]reflect.Type) string {
	best, dist := "", 0
	for _, name := range sortedKeys(known) {
		d := editDistance(normalise(k), normalise(name))
		if best == "" || d < dist {
			best, dist = name, d
		}
	}
	if best != "" && dist <= max(2, len(k)/3) {
		return fmt.Sprintf("; did you mean %s?", join(path, best))
	}
	if where := findKey(reflect.TypeOf(Config{}), "", k); where != "" && path == "" {
		return fmt.Sprintf("; did you mean %s?", where)
	}
	return fmt.Sprintf(" (known keys here: %s)", strings.Join(sortedKeys(known), ", "))
}

// normalise lets "keyFile", "key-file" and "key_file" meet.
func normalise(s string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
}

// findKey finds the full key of a nested scalar named k (not under records).
func findKey(t reflect.Type, path, k string) string {
	for name, ft := range fields(t) {
		if name == "records" {
			continue
		}
		if ft.Kind() == reflect.Struct && ft != durationType {
			if w := findKey(ft, join(path, name), k); w != "" {
				return w
			}
		} else if path != "" && normalise(name) == normalise(k) {
			return join(path, name)
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// located adds the file line to a validation problem whose text starts with
// a key the file sets, and drops problems about keys that already have one
// (a value that could not be read is not also reported as missing).
func (c *Config) located(errs []error) []error {
	out := make([]error, 0, len(errs))
	for _, err := range errs {
		msg := err.Error()
		key, rest, ok := strings.Cut(msg, ": ")
		if !ok || strings.ContainsAny(key, " \n") {
			out = append(out, err)
			continue
		}
		if c.badKeys[key] {
			continue
		}
		p := &Problem{Key: key, Line: c.lines[key], Msg: rest}
		if !strings.Contains(key, "[") {
			if env := envName(key); os.Getenv(env) != "" {
				p.Env, p.Line = env, 0
			}
		}
		out = append(out, p)
	}
	return out
}

// missingFiles lists every file the configuration names that cannot be read,
// not only the first: trust anchors, intermediates, CRLs and published
// signing keys (a missing signing.key_file is generated).
func (c *Config) missingFiles() []error {
	var errs []error
	check := func(key, f string) {
		if f == "" {
			return
		}
		if _, err := os.Stat(c.Path(f)); err != nil {
			msg := fmt.Sprintf("cannot read %s", c.Path(f))
			if errors.Is(err, os.ErrNotExist) {
				msg = fmt.Sprintf("%s does not exist", c.Path(f))
			}
			errs = append(errs, fmt.Errorf("%s: %s", key, msg))
		}
	}
	list := func(key string, files []string) {
		for i, f := range files {
			check(fmt.Sprintf("%s[%d]", key, i), f)
		}
	}
	list("trust.roots", c.Trust.Roots)
	list("trust.intermediates", c.Trust.Intermediates)
	if c.Trust.Revocation.Enabled {
		list("trust.revocation.crl_files", c.Trust.Revocation.CRLFiles)
	}
	list("signing.publish_key_files", c.Signing.PublishKeyFiles)
	check("tls.cert_file", c.TLS.CertFile)
	check("tls.key_file", c.TLS.KeyFile)
	list("tls.client_ca_files", c.TLS.ClientCAFiles)
	check("signing.kek_file", c.Signing.KEKFile)
	check("signing.pkcs11.module", c.Signing.PKCS11.Module)
	return errs
}
