package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v4"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/pkg/client"
)

// adminCLI is the state every `portvakt admin` command shares: how to get a
// token (the signing flags of `portvakt token`) and how to print.
type adminCLI struct {
	sf          signingFlags
	consumerOrg string
	asJSON      bool   // --json, the same as --output json
	output      string // table, json or yaml
	quiet       bool   // only the id of each record
	httpClient  *http.Client
	now         func() time.Time // when client keys expire, relative to now
}

// The admin scope each command asks for in its token: the built-in ones
// (records), named short here.
const (
	scAdmin       = records.AdminScope
	scScopesRead  = records.ScopesRead
	scScopesWrite = records.ScopesWrite
	scClientsRead = records.ClientsRead
	scClientsWr   = records.ClientsWrite
	scDelegWrite  = records.DelegationsWrite
	scAuditRead   = records.AuditRead
	scAccessReq   = records.AccessRequest
	scWebhooks    = records.WebhooksWrite
)

func adminCmd() *cobra.Command {
	a := &adminCLI{httpClient: &http.Client{Timeout: 30 * time.Second}, now: time.Now}
	cmd := &cobra.Command{
		Use: "admin",
		Example: `  export PORTVAKT_ISSUER=http://127.0.0.1:8080/
  CREDS="--client-id <id> --cert org.pem --key org.key"
  portvakt admin scopes list $CREDS
  portvakt admin access inbox --json $CREDS`,
		Short: "Use the self-service API: prefixes, scopes, access, clients, keys, delegations, audit, webhooks",
		Long: `Every admin command gets its own access token with the same signing options
as 'portvakt token' (--issuer, --client-id, and --cert or --key with --kid),
asking for the admin scope the command needs. A vendor acting for a customer
adds --consumer-org. Output is a table that fits 80 columns: long text goes
on lines of its own under its row, and what is still too long is cut with
"..."; --json prints the API's JSON, whole.

The examples write $CREDS for the signing options and take the issuer from
the environment, as the first two lines of the examples below show.`,
	}
	// The signing flags are those of `portvakt token`, made persistent.
	tmp := &cobra.Command{}
	a.sf.register(tmp)
	cmd.PersistentFlags().AddFlagSet(tmp.Flags())
	cmd.PersistentFlags().StringVar(&a.consumerOrg, "consumer-org", "", "act for this organisation (it delegated the admin scope to yours)")
	cmd.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "how to print records: table, json or yaml")
	cmd.PersistentFlags().BoolVar(&a.asJSON, "json", false, "print JSON (the same as --output json)")
	cmd.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "print only the id of each record (client_id, id, name or prefix), one per line")
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		switch a.output {
		case "table", "json", "yaml":
		default:
			return usage("--output must be table, json or yaml, not %q", a.output)
		}
		if a.asJSON && c.Flags().Changed("output") && a.output != "json" {
			return usage("--json and --output %s disagree; give one", a.output)
		}
		if a.asJSON {
			a.output = "json"
		}
		return nil
	}
	cmd.AddCommand(a.prefixesCmd(), a.scopesCmd(), a.accessCmd(), a.clientsCmd(), a.delegationsCmd(), a.auditCmd(), a.webhooksCmd(), a.membersCmd())
	return cmd
}

// token gets an access token with scopes.
func (a *adminCLI) token(cmd *cobra.Command, scopes ...string) (string, error) {
	cfg, err := a.sf.clientConfig(cmd.ErrOrStderr())
	if err != nil {
		return "", err
	}
	cfg.Scopes = scopes
	cfg.ConsumerOrg = a.consumerOrg
	cfg.HTTPClient = a.httpClient
	ts, err := client.NewTokenSource(cmd.Context(), cfg)
	if err != nil {
		return "", err
	}
	resp, err := ts.Fetch(cmd.Context())
	if err != nil {
		return "", fmt.Errorf("get a token with %s: %w", strings.Join(scopes, " "), err)
	}
	return resp.AccessToken, nil
}

// problem is an RFC 9457 answer of the API.
type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

func (p *problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d %s: %s", p.Status, p.Title, p.Detail)
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", e.Field, e.Detail)
	}
	return b.String()
}

// call does one API request with a token for scopes (none: no token) and
// returns the body of a 2xx answer.
func (a *adminCLI) call(cmd *cobra.Command, scopes []string, method, path string, body any) ([]byte, error) {
	if a.sf.issuer == "" {
		return nil, usage("--issuer is required (or PORTVAKT_ISSUER)")
	}
	var tok string
	if len(scopes) > 0 {
		var err error
		if tok, err = a.token(cmd, scopes...); err != nil {
			return nil, err
		}
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	base := strings.TrimSuffix(a.sf.issuer, "/") + "/api/v1"
	b, next, err := a.do(ctx, method, base+path, tok, rd)
	if err != nil || method != http.MethodGet {
		return b, err
	}
	// A list answers one page and links the next (RFC 8288): follow the
	// links, only under the API's own URL (the token goes with them), and
	// join the pages into one array.
	var all []json.RawMessage
	for page := 0; ; page++ {
		if next == "" {
			if page == 0 {
				return b, nil
			}
			break
		}
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, fmt.Errorf("a paged answer is not a JSON array: %w", err)
		}
		all = append(all, items...)
		if !strings.HasPrefix(next, base+"/") {
			return nil, fmt.Errorf("the server's next page %q is not under %s", next, base)
		}
		if page >= maxPages {
			return nil, fmt.Errorf("the list has more than %d pages", maxPages)
		}
		if b, next, err = a.do(ctx, method, next, tok, nil); err != nil {
			return nil, err
		}
	}
	var last []json.RawMessage
	if err := json.Unmarshal(b, &last); err != nil {
		return nil, fmt.Errorf("a paged answer is not a JSON array: %w", err)
	}
	return json.Marshal(append(all, last...))
}

// maxPages bounds how many pages of one list the CLI follows.
const maxPages = 10000

var linkNext = regexp.MustCompile(`^<([^>]*)>;\s*rel="next"$`)

// do sends one request and returns the body of a 2xx answer and its
// rel="next" link, if any.
func (a *adminCLI) do(ctx context.Context, method, url, tok string, rd io.Reader) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, "", err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := a.httpClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode >= 300 {
		p := &problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if json.Unmarshal(b, p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(string(b))
		}
		return nil, "", p
	}
	next := ""
	if m := linkNext.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
		next = m[1]
	}
	return b, next, nil
}

// show prints an answer: its JSON with --json, else a table of the
// columns. A column written "+field" is a note: printed as "field: value"
// on a line under its row (when it has a value), where long text such as a
// reason or a list of scopes has the table's width rather than what the
// other columns leave.
func (a *adminCLI) show(cmd *cobra.Command, body []byte, spec ...string) error {
	out := cmd.OutOrStdout()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	switch {
	case a.quiet:
		return printIDs(out, body)
	case a.output == "json":
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := out.Write(buf.Bytes())
		return err
	case a.output == "yaml":
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return err
		}
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	rows, err := recordsOf(body)
	if err != nil {
		return err
	}
	var cols, notes []string
	for _, c := range spec {
		if n, ok := strings.CutPrefix(c, "+"); ok {
			notes = append(notes, n)
		} else {
			cols = append(cols, c)
		}
	}
	table := [][]string{make([]string, len(cols))}
	for i, c := range cols {
		table[0][i] = header(c)
	}
	under := [][]string{nil}
	for _, r := range rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(r[c])
		}
		table = append(table, cells)
		lines := noteLines(r, slices.DeleteFunc(slices.Clone(notes), func(n string) bool { return n == "keys" }))
		if slices.Contains(notes, "keys") {
			lines = append(lines, keyLines(r, a.now())...)
		}
		under = append(under, lines)
	}
	widths := fitTable(table, cols)
	var b strings.Builder
	for i, cells := range table {
		for j, c := range cells {
			b.WriteString(c)
			if j < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(c)+colGap))
			}
		}
		b.WriteByte('\n')
		for _, l := range under[i] {
			b.WriteString(l + "\n")
		}
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// recordsOf reads an answer of the API as records: a list, or one record
// as a list of one.
func recordsOf(body []byte) ([]map[string]any, error) {
	var rows []map[string]any
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		err := json.Unmarshal(body, &rows)
		return rows, err
	}
	var one map[string]any
	if err := json.Unmarshal(body, &one); err != nil {
		return nil, err
	}
	return []map[string]any{one}, nil
}

// keyExpiryWarning is how long before its expiry a client key is marked.
const keyExpiryWarning = 30 * 24 * time.Hour

// keyLines shows each key of a client row (its "keys"): kid, who uploaded
// it (the client's own org when the record leaves it empty) and when it
// expires, marked when that is within keyExpiryWarning of now or past.
// Each key's fields are packed into lines of at most tableWidth columns.
func keyLines(r map[string]any, now time.Time) []string {
	keys, _ := r["keys"].([]any)
	var lines []string
	for _, raw := range keys {
		k, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		by, _ := k["uploaded_by"].(string)
		if by == "" {
			by, _ = r["client_orgno"].(string)
		}
		fields := []string{"key: " + cell(k["kid"]), "uploaded_by: " + cell(by), "expires: " + cell(k["expires"]) + expiryMark(k["expires"], now)}
		line := noteIndent + fields[0]
		for _, f := range fields[1:] {
			if utf8.RuneCountInString(line)+colGap+utf8.RuneCountInString(f) <= tableWidth {
				line += strings.Repeat(" ", colGap) + f
				continue
			}
			lines = append(lines, clip(line, tableWidth))
			line = noteIndent + "  " + f
		}
		lines = append(lines, clip(line, tableWidth))
	}
	return lines
}

// expiryMark marks an expiry (RFC 3339) that is past or near.
func expiryMark(v any, now time.Time) string {
	s, _ := v.(string)
	exp, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil:
		return ""
	case !now.Before(exp):
		return " (EXPIRED)"
	case exp.Sub(now) <= keyExpiryWarning:
		days := records.DaysLeft(exp, now)
		if days == 1 {
			return " (EXPIRES IN 1 DAY)"
		}
		return fmt.Sprintf(" (EXPIRES IN %d DAYS)", days)
	}
	return ""
}

// noteLines packs a row's notes that have a value into indented lines of
// at most tableWidth columns, "field: value" two spaces apart. A list
// longer than a line goes on as many lines as it needs, broken between its
// items; any other note longer than a line is cut.
func noteLines(r map[string]any, notes []string) []string {
	var lines []string
	line := ""
	for _, n := range notes {
		v := cell(r[n])
		if v == "-" {
			continue
		}
		f := n + ": " + v
		if line != "" && utf8.RuneCountInString(line)+colGap+utf8.RuneCountInString(f) <= tableWidth {
			line += strings.Repeat(" ", colGap) + f
			continue
		}
		if line != "" {
			lines = append(lines, line)
		}
		line = noteIndent + f
		if list, ok := r[n].([]any); ok && utf8.RuneCountInString(line) > tableWidth {
			line = noteIndent + n + ":"
			for i, item := range list {
				it := " " + cell(item)
				if i < len(list)-1 {
					it += ","
				}
				if utf8.RuneCountInString(line)+utf8.RuneCountInString(it) > tableWidth && strings.TrimSpace(line) != n+":" {
					lines = append(lines, clip(line, tableWidth))
					line = noteIndent + strings.Repeat(" ", len(n)+1)
				}
				line += it
			}
		}
		line = clip(line, tableWidth)
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// Tables fit a terminal of tableWidth columns: when a row would be wider,
// the free-text columns (cutColumns) are cut with "...", the narrower ones
// keeping what they need first; --json shows every value whole. The other
// columns (names, ids, states, times) are never cut.
const (
	tableWidth = 80
	colGap     = 2
	minCut     = 8
	noteIndent = "    "
)

var cutColumns = map[string]bool{"description": true, "reason": true, "url": true, "error": true, "client_name": true}

// shortHeaders name the wide columns in a table's header; --json keeps the
// API's names.
var shortHeaders = map[string]string{
	"consumer_orgno": "CONSUMER", "owner_orgno": "OWNER", "supplier_orgno": "SUPPLIER",
	"last_updated": "UPDATED", "accessible_for_all": "FOR_ALL", "client_orgno": "ORG",
	"token_binding": "BINDING", "require_dpop": "DPOP",
}

func header(col string) string {
	if h, ok := shortHeaders[col]; ok {
		return h
	}
	return strings.ToUpper(col)
}

// fitTable cuts the free-text cells of table (its first row the header) so
// that its rows fit tableWidth, and returns the columns' widths.
func fitTable(table [][]string, cols []string) []int {
	widths := make([]int, len(cols))
	for _, row := range table {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	room := tableWidth - colGap*(len(cols)-1)
	var cut []int
	for i, c := range cols {
		if cutColumns[c] {
			cut = append(cut, i)
		} else {
			room -= widths[i]
		}
	}
	slices.SortStableFunc(cut, func(x, y int) int { return widths[x] - widths[y] })
	for k, i := range cut {
		w := min(widths[i], max(room/(len(cut)-k), minCut, len(table[0][i])))
		room -= w
		widths[i] = w
		for _, row := range table {
			row[i] = clip(row[i], w)
		}
	}
	return widths
}

// clip cuts s to at most w runes, ending in "..." when cut.
func clip(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	r := []rune(s)
	return string(r[:w-3]) + "..."
}

func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		if v == "" {
			return "-"
		}
		// Times to the second, in UTC: the API's have nanoseconds.
		if len(v) >= 20 && v[4] == '-' {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return t.UTC().Format(time.RFC3339)
			}
		}
		// A cell is one line of a table.
		return strings.Join(strings.Fields(v), " ")
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = cell(p)
		}
		return strings.Join(parts, ", ")
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// run is the common shape of a command: call, then show.
func (a *adminCLI) run(scopes []string, method string, path func(args []string) string, body func(cmd *cobra.Command, args []string) (any, error), cols ...string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		var b any
		if body != nil {
			var err error
			if b, err = body(cmd, args); err != nil {
				return err
			}
		}
		out, err := a.call(cmd, scopes, method, path(args), b)
		if err != nil {
			return err
		}
		if len(out) == 0 {
			if !a.quiet {
				fmt.Fprintln(cmd.OutOrStdout(), "done")
			}
			return nil
		}
		return a.show(cmd, out, cols...)
	}
}

func withInactive(path string, inactive bool) string {
	if !inactive {
		return path
	}
	if strings.Contains(path, "?") {
		return path + "&inactive=true"
	}
	return path + "?inactive=true"
}

func scopeQuery(s string) string { return "?scope=" + url.QueryEscape(s) }

var (
	prefixCols     = []string{"prefix", "owner_org", "last_updated"}
	scopeCols      = []string{"name", "active", "visibility", "accessible_for_all", "at_max_age", "token_binding", "+delegation_source", "+description"}
	clientCols     = []string{"client_id", "client_orgno", "client_name", "active", "require_dpop", "+managed_by", "+scopes", "+description", "+keys"}
	delegationCols = []string{"scope", "consumer_orgno", "supplier_orgno", "state", "last_updated"}
	keyCols        = []string{"kid", "kty", "alg", "crv", "exp", "uploaded_by"}
)

func (a *adminCLI) prefixesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "prefixes", Example: `  portvakt admin prefixes set acme 310000027 $CREDS
  portvakt admin prefixes list $CREDS`, Short: "Assign scope prefixes to providers (platform admin)"}
	cmd.AddCommand(&cobra.Command{
		Use: "set PREFIX OWNER_ORG", Example: `  portvakt admin prefixes set acme 310000027 $CREDS`, Short: "Assign PREFIX to the organisation OWNER_ORG", Args: cobra.ExactArgs(2),
		RunE: a.run([]string{scAdmin}, "PUT", func(args []string) string { return "/prefixes/" + url.PathEscape(args[0]) },
			func(_ *cobra.Command, args []string) (any, error) {
				return map[string]string{"owner_org": args[1]}, nil
			}, prefixCols...),
	}, &cobra.Command{
		Use: "list", Example: `  portvakt admin prefixes list --json $CREDS`, Short: "List every prefix", Args: cobra.NoArgs,
		RunE: a.run([]string{scAdmin}, "GET", func([]string) string { return "/prefixes" }, nil, prefixCols...),
	})
	return cmd
}

// scopeFlags are the editable fields of a scope.
type scopeFlags struct {
	description, longDescription, visibility string
	tokenBinding                             string
	accessibleForAll, delegable, requiresAud bool
	atMaxAge                                 int
	audiences, integrationTypes              []string
}

func (f *scopeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.description, "description", "", "short description (required on create)")
	cmd.Flags().StringVar(&f.longDescription, "long-description", "", "long description")
	cmd.Flags().StringVar(&f.visibility, "visibility", "PUBLIC", "PUBLIC or PRIVATE")
	cmd.Flags().BoolVar(&f.accessibleForAll, "accessible-for-all", false, "every organisation may get the scope")
	cmd.Flags().BoolVar(&f.delegable, "delegable", false, "consumers may delegate the scope to vendors")
	cmd.Flags().BoolVar(&f.requiresAud, "requires-audience", false, "token requests must name a resource")
	cmd.Flags().IntVar(&f.atMaxAge, "at-max-age", 0, "token lifetime cap in seconds (0 = none, at most 7200)")
	cmd.Flags().StringArrayVar(&f.audiences, "audience", nil, "allowed resource (repeat)")
	cmd.Flags().StringArrayVar(&f.integrationTypes, "integration-type", nil, "allowed integration type (repeat; empty = any)")
	cmd.Flags().StringVar(&f.tokenBinding, "token-binding", "none", "the sender constraint its tokens need: none, dpop (a DPoP proof), mtls (a client certificate) or any (either)")
}

// apply sets the flags the user gave on m (all of them when all is true).
func (f *scopeFlags) apply(cmd *cobra.Command, m map[string]any, issuer string, all bool) {
	set := func(flag, key string, v any) {
		if all || cmd.Flags().Changed(flag) {
			m[key] = v
		}
	}
	set("description", "description", f.description)
	set("long-description", "long_description", f.longDescription)
	set("visibility", "visibility", f.visibility)
	set("accessible-for-all", "accessible_for_all", f.accessibleForAll)
	set("requires-audience", "requires_audience", f.requiresAud)
	set("at-max-age", "at_max_age", f.atMaxAge)
	set("audience", "audiences", nonNilStrings(f.audiences))
	set("integration-type", "allowed_integration_types", nonNilStrings(f.integrationTypes))
	set("token-binding", "token_binding", f.tokenBinding)
	src := ""
	if f.delegable {
		src = issuer
	}
	set("delegable", "delegation_source", src)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *adminCLI) scopesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "scopes", Example: `  portvakt admin scopes create acme:api --description "The ACME API" --delegable $CREDS
  portvakt admin scopes list $CREDS
  portvakt admin scopes all`, Short: "Your organisation's scopes (providers)"}
	var create, update scopeFlags
	var inactive bool
	createCmd := &cobra.Command{
		Use: "create PREFIX:SUBSCOPE", Example: `  portvakt admin scopes create acme:api --description "The ACME API" $CREDS
  portvakt admin scopes create acme:records --description "Records" --visibility PRIVATE \
    --requires-audience --audience https://api.acme.example/records --at-max-age 300 $CREDS
  portvakt admin scopes create acme:payments --description "Payments" --token-binding dpop $CREDS`, Short: "Create a scope under a prefix your organisation owns", Args: cobra.ExactArgs(1),
		RunE: a.run([]string{scScopesWrite}, "POST", func([]string) string { return "/scopes" },
			func(cmd *cobra.Command, args []string) (any, error) {
				prefix, sub, ok := strings.Cut(args[0], ":")
				if !ok {
					return nil, fmt.Errorf("%q: give the scope as prefix:subscope", args[0])
				}
				m := map[string]any{"prefix": prefix, "subscope": sub}
				create.apply(cmd, m, a.sf.issuer, true)
				return m, nil
			}, scopeCols...),
	}
	create.register(createCmd)
	updateCmd := &cobra.Command{
		Use: "update SCOPE", Example: `  portvakt admin scopes update acme:api --description "The ACME API, version 2" $CREDS
  portvakt admin scopes update acme:api --activate $CREDS`, Short: "Change a scope: the flags given replace those fields", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := a.record(cmd, []string{scScopesWrite}, "/scopes"+scopeQuery(args[0]))
			if err != nil {
				return err
			}
			update.apply(cmd, m, a.sf.issuer, false)
			if cmd.Flags().Changed("activate") {
				m["active"] = true
			}
			out, err := a.call(cmd, []string{scScopesWrite}, "PUT", "/scopes"+scopeQuery(args[0]), m)
			if err != nil {
				return err
			}
			return a.show(cmd, out, scopeCols...)
		},
	}
	update.register(updateCmd)
	updateCmd.Flags().Bool("activate", false, "reactivate a deactivated scope")
	listCmd := &cobra.Command{
		Use: "list", Example: `  portvakt admin scopes list $CREDS
  portvakt admin scopes list --inactive --json $CREDS`, Short: "List your organisation's scopes", Args: cobra.NoArgs,
		RunE: a.run([]string{scScopesRead}, "GET", func([]string) string { return withInactive("/scopes", inactive) }, nil, scopeCols...),
	}
	listCmd.Flags().BoolVar(&inactive, "inactive", false, "include deactivated scopes")
	allCmd := &cobra.Command{
		Use: "all", Example: `  portvakt admin scopes all --issuer http://127.0.0.1:8080/     # public scopes, no credentials
  portvakt admin scopes all $CREDS                                # and the private ones you can get`, Short: "List every public scope (and, with credentials, the private ones you can get)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var scopes []string
			if a.sf.clientID != "" {
				scopes = []string{scScopesRead}
			}
			out, err := a.call(cmd, scopes, "GET", "/scopes/all", nil)
			if err != nil {
				return err
			}
			return a.show(cmd, out, append([]string{"owner_orgno"}, scopeCols...)...)
		},
	}
	sourcesCmd := &cobra.Command{
		Use: "delegation-sources", Example: `  portvakt admin scopes delegation-sources --issuer http://127.0.0.1:8080/`, Short: "List the delegation sources a scope may name", Args: cobra.NoArgs,
		RunE: a.run(nil, "GET", func([]string) string { return "/delegationsources" }, nil, "name", "issuer"),
	}
	cmd.AddCommand(createCmd, updateCmd, listCmd, allCmd, sourcesCmd, &cobra.Command{
		Use: "get SCOPE", Example: `  portvakt admin scopes get acme:api $CREDS`, Short: "Show one of your scopes", Args: cobra.ExactArgs(1),
		RunE: a.run([]string{scScopesRead}, "GET", func(args []string) string { return "/scopes" + scopeQuery(args[0]) }, nil, scopeCols...),
	}, &cobra.Command{
		Use: "delete SCOPE", Example: `  portvakt admin scopes delete acme:api $CREDS
  portvakt admin scopes list --inactive $CREDS`, Short: "Deactivate one of your scopes (scopes are never deleted)", Args: cobra.ExactArgs(1),
		RunE: a.thenShow(a.run([]string{scScopesWrite}, "DELETE", func(args []string) string { return "/scopes" + scopeQuery(args[0]) }, nil),
			a.run([]string{scScopesWrite}, "GET", func(args []string) string { return "/scopes" + scopeQuery(args[0]) }, nil, scopeCols...)),
	})
	return cmd
}

// clientFlags are the editable fields of a client.
type clientFlags struct {
	name, description, org string
	scopes                 []string
	lifetime               int
	requireDPoP            bool
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.name, "name", "", "client name")
	cmd.Flags().StringVar(&f.description, "description", "", "what the client is for (required on create)")
	cmd.Flags().StringSliceVar(&f.scopes, "scope", nil, "scope the client may ask for (repeat, or comma-separated)")
	cmd.Flags().IntVar(&f.lifetime, "lifetime", 0, "access token lifetime cap in seconds (0 = none)")
	cmd.Flags().BoolVar(&f.requireDPoP, "require-dpop", false, "every token request must carry a DPoP proof (--require-dpop=false lifts it)")
}

func (a *adminCLI) clientsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "clients", Example: `  portvakt admin clients create --name acme-integration --description "calls the ACME API" --scope acme:api $CREDS
  portvakt admin clients list $CREDS`, Short: "Your organisation's clients and their keys"}
	var create, update clientFlags
	var inactive bool
	createCmd := &cobra.Command{
		Use: "create", Example: `  portvakt admin clients create --name acme-integration --description "calls the ACME API" --scope acme:api $CREDS
  portvakt admin clients create --org 310000035 --name admin --description "self-service" \
    --scope portvakt:clients.write,portvakt:scopes.read $CREDS     # platform admin, onboarding`, Short: "Create a client (it authenticates with its enterprise certificate until keys are uploaded)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scopes := []string{scClientsWr}
			if create.org != "" {
				scopes = append(scopes, scAdmin) // onboarding another org
			}
			body := map[string]any{"client_name": create.name, "description": create.description,
				"scopes": nonNilStrings(splitList(create.scopes)), "access_token_lifetime": create.lifetime, "require_dpop": create.requireDPoP}
			if create.org != "" {
				body["client_orgno"] = create.org
			}
			out, err := a.call(cmd, scopes, "POST", "/clients", body)
			if err != nil {
				return err
			}
			return a.show(cmd, out, clientCols...)
		},
	}
	create.register(createCmd)
	createCmd.Flags().StringVar(&create.org, "org", "", "platform admin only: create the client for this organisation (onboarding)")
	updateCmd := &cobra.Command{
		Use: "update CLIENT_ID", Example: `  portvakt admin clients update <client_id> --scope acme:api,acme:reports $CREDS
  portvakt admin clients update <client_id> --activate $CREDS`, Short: "Change a client: the flags given replace those fields", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/clients/" + url.PathEscape(args[0])
			m, err := a.record(cmd, []string{scClientsWr}, path)
			if err != nil {
				return err
			}
			delete(m, "keys")
			if cmd.Flags().Changed("name") {
				m["client_name"] = update.name
			}
			if cmd.Flags().Changed("description") {
				m["description"] = update.description
			}
			if cmd.Flags().Changed("scope") {
				m["scopes"] = nonNilStrings(splitList(update.scopes))
			}
			if cmd.Flags().Changed("lifetime") {
				m["access_token_lifetime"] = update.lifetime
			}
			if cmd.Flags().Changed("require-dpop") {
				m["require_dpop"] = update.requireDPoP
			}
			if cmd.Flags().Changed("activate") {
				m["active"] = true
			}
			out, err := a.call(cmd, []string{scClientsWr}, "PUT", path, m)
			if err != nil {
				return err
			}
			return a.show(cmd, out, clientCols...)
		},
	}
	update.register(updateCmd)
	updateCmd.Flags().Bool("activate", false, "reactivate a deactivated client")
	listCmd := &cobra.Command{
		Use: "list", Example: `  portvakt admin clients list $CREDS
  portvakt admin clients list --inactive --json $CREDS`, Short: "List your organisation's clients", Args: cobra.NoArgs,
		RunE: a.run([]string{scClientsRead}, "GET", func([]string) string { return withInactive("/clients", inactive) }, nil, clientCols...),
	}
	listCmd.Flags().BoolVar(&inactive, "inactive", false, "include deactivated clients")
	cmd.AddCommand(createCmd, updateCmd, listCmd, &cobra.Command{
		Use: "get CLIENT_ID", Example: `  portvakt admin clients get <client_id> $CREDS`, Short: "Show a client", Args: cobra.ExactArgs(1),
		RunE: a.run([]string{scClientsRead}, "GET", func(args []string) string { return "/clients/" + url.PathEscape(args[0]) }, nil, clientCols...),
	}, &cobra.Command{
		Use: "delete CLIENT_ID", Example: `  portvakt admin clients delete <client_id> $CREDS`, Short: "Deactivate a client", Args: cobra.ExactArgs(1),
		RunE: a.thenShow(a.run([]string{scClientsWr}, "DELETE", func(args []string) string { return "/clients/" + url.PathEscape(args[0]) }, nil),
			a.run([]string{scClientsWr}, "GET", func(args []string) string { return "/clients/" + url.PathEscape(args[0]) }, nil, clientCols...)),
	}, a.keysCmd())
	return cmd
}

func (a *adminCLI) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Example: `  portvakt admin clients keys upload <client_id> integration.key --key-id key-1 $CREDS
  portvakt admin clients keys list <client_id> $CREDS`, Short: "A client's public keys (JWKS)"}
	var kid string
	var add bool
	upload := &cobra.Command{
		Use: "upload CLIENT_ID FILE",
		Example: `  openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out integration.key
  portvakt admin clients keys upload <client_id> integration.key --key-id key-1 $CREDS
  portvakt admin clients keys upload <client_id> next.jwks.json --add $CREDS     # keep the current keys`,
		Short: "Replace (or with --add extend) a client's keys from a JWKS, a JWK, or a PEM key (with --key-id)",
		Long: `FILE is a JWKS ({"keys":[...]}), a single JWK, or a PEM public key (a PEM
private key is accepted too: only its public part is uploaded). A PEM key
needs --key-id. The private key never leaves this machine.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := readKeys(args[1], kid)
			if err != nil {
				return err
			}
			path := "/clients/" + url.PathEscape(args[0]) + "/jwks"
			if add {
				cur, err := a.call(cmd, []string{scClientsWr}, "GET", path, nil)
				if err != nil {
					return err
				}
				var set struct{ Keys []map[string]any }
				if err := json.Unmarshal(cur, &set); err != nil {
					return err
				}
				var old []any
				for _, k := range set.Keys {
					delete(k, "exp")
					old = append(old, k)
				}
				keys = append(old, keys...)
			}
			out, err := a.call(cmd, []string{scClientsWr}, "POST", path, map[string]any{"keys": keys})
			if err != nil {
				return err
			}
			return a.showKeys(cmd, out)
		},
	}
	upload.Flags().StringVar(&kid, "key-id", "", "kid of a PEM key (and of a JWK without one)")
	upload.Flags().BoolVar(&add, "add", false, "keep the client's current keys and add these")
	var delKid string
	del := &cobra.Command{
		Use: "delete CLIENT_ID", Example: `  portvakt admin clients keys delete <client_id> --key-id key-1 $CREDS
  portvakt admin clients keys delete <client_id> $CREDS     # every key`, Short: "Remove every key of a client, or with --key-id one key", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/clients/" + url.PathEscape(args[0]) + "/jwks"
			if delKid == "" {
				if _, err := a.call(cmd, []string{scClientsWr}, "DELETE", path, nil); err != nil {
					return err
				}
				out, err := a.call(cmd, []string{scClientsWr}, "GET", path, nil)
				if err != nil {
					return err
				}
				return a.showKeys(cmd, out)
			}
			cur, err := a.call(cmd, []string{scClientsWr}, "GET", path, nil)
			if err != nil {
				return err
			}
			var set struct{ Keys []map[string]any }
			if err := json.Unmarshal(cur, &set); err != nil {
				return err
			}
			keep := []any{}
			for _, k := range set.Keys {
				if k["kid"] != delKid {
					delete(k, "exp")
					keep = append(keep, k)
				}
			}
			if len(keep) == len(set.Keys) {
				return fmt.Errorf("client %s has no key %q", args[0], delKid)
			}
			out, err := a.call(cmd, []string{scClientsWr}, "POST", path, map[string]any{"keys": keep})
			if err != nil {
				return err
			}
			return a.showKeys(cmd, out)
		},
	}
	del.Flags().StringVar(&delKid, "key-id", "", "remove only the key with this kid")
	cmd.AddCommand(upload, del, &cobra.Command{
		Use: "list CLIENT_ID", Example: `  portvakt admin clients keys list <client_id> $CREDS`, Short: "List a client's keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := a.call(cmd, []string{scClientsRead}, "GET", "/clients/"+url.PathEscape(args[0])+"/jwks", nil)
			if err != nil {
				return err
			}
			return a.showKeys(cmd, out)
		},
	})
	return cmd
}

func (a *adminCLI) showKeys(cmd *cobra.Command, body []byte) error {
	if a.raw() {
		return a.show(cmd, body)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return err
	}
	for _, k := range set.Keys {
		if exp, ok := k["exp"].(float64); ok {
			k["exp"] = time.Unix(int64(exp), 0).UTC().Format(time.RFC3339)
		}
	}
	b, err := json.Marshal(set.Keys)
	if err != nil {
		return err
	}
	return a.show(cmd, b, keyCols...)
}

// readKeys reads public JWKs from a JWKS, a JWK or a PEM file.
func readKeys(file, kid string) ([]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(b)
	if bytes.HasPrefix(trimmed, []byte("{")) {
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(trimmed, &set); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if set.Keys == nil {
			var one map[string]any
			if err := json.Unmarshal(trimmed, &one); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if one["kid"] == nil && kid != "" {
				one["kid"] = kid
			}
			set.Keys = []map[string]any{one}
		}
		out := make([]any, len(set.Keys))
		for i, k := range set.Keys {
			out[i] = k
		}
		return out, nil
	}
	if kid == "" {
		return nil, usage("a PEM key needs --key-id (the kid to register it under)")
	}
	pub, err := publicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	jb, err := records.PublicJWK(pub, kid)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(jb, &m); err != nil {
		return nil, err
	}
	return []any{m}, nil
}

// publicKeyPEM reads a PEM public key, or the public part of a private key.
func publicKeyPEM(b []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if pub, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		return pub, nil
	}
	priv, err := client.LoadPrivateKeyPEM(b)
	if err != nil {
		return nil, errors.New("neither a PEM public key nor a private key")
	}
	return priv.Public(), nil
}

func (a *adminCLI) delegationsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delegations", Example: `  portvakt admin delegations create acme:api 310000043 $CREDS
  portvakt admin delegations list $CREDS`, Short: "Delegations your organisation gave (as consumer) and received (as vendor)"}
	var inactive bool
	listCmd := &cobra.Command{
		Use: "list", Example: `  portvakt admin delegations list $CREDS
  portvakt admin delegations list --inactive $CREDS`, Short: "List delegations given and received", Args: cobra.NoArgs,
		RunE: a.run([]string{scScopesRead}, "GET", func([]string) string { return withInactive("/delegations", inactive) }, nil, delegationCols...),
	}
	listCmd.Flags().BoolVar(&inactive, "inactive", false, "include REVOKED delegations")
	cmd.AddCommand(&cobra.Command{
		Use: "create SCOPE SUPPLIER_ORG", Example: `  portvakt admin delegations create acme:api 310000043 $CREDS
  portvakt admin delegations create portvakt:clients.write 310000043 $CREDS     # the vendor runs your clients`, Short: "Let the vendor SUPPLIER_ORG get SCOPE on your behalf", Args: cobra.ExactArgs(2),
		RunE: a.run([]string{scDelegWrite}, "PUT", delegationPath, nil, delegationCols...),
	}, &cobra.Command{
		Use: "revoke SCOPE SUPPLIER_ORG", Example: `  portvakt admin delegations revoke acme:api 310000043 $CREDS`, Short: "Revoke a delegation (the row stays, REVOKED)", Args: cobra.ExactArgs(2),
		RunE: a.thenShow(a.run([]string{scDelegWrite}, "DELETE", delegationPath, nil),
			a.run([]string{scDelegWrite}, "GET", delegationPath, nil, delegationCols...)),
	}, listCmd)
	return cmd
}

// delegationPath is the delegation of SCOPE to SUPPLIER_ORG (the two
// arguments of create and revoke).
func delegationPath(args []string) string {
	return "/delegations/" + url.PathEscape(args[1]) + scopeQuery(args[0])
}

func (a *adminCLI) auditCmd() *cobra.Command {
	var limit int
	var cursor, action, target, scope, clientID, from, to string
	cmd := &cobra.Command{
		Use: "audit",
		Example: `  portvakt admin audit $CREDS
  portvakt admin audit --action access.revoke --json $CREDS
  portvakt admin audit --action token.issue --scope acme:api --from 2026-12-01T00:00:00Z $CREDS`,
		Short: "Audit events concerning your organisation, newest first: admin changes and issued tokens",
		Long: `Audit events concerning your organisation, newest first: the admin changes to its
records, and the tokens issued that concern it (as consumer, as vendor, or as the
provider of their scopes; action token.issue). One page per call; --cursor with the
printed next cursor reads the next page.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			for k, v := range map[string]string{"cursor": cursor, "action": action, "target": target,
				"scope": scope, "client_id": clientID, "from": from, "to": to} {
				if v != "" {
					q.Set(k, v)
				}
			}
			path := "/audit"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			out, err := a.call(cmd, []string{scAuditRead}, "GET", path, nil)
			if err != nil {
				return err
			}
			if a.raw() {
				return a.show(cmd, out)
			}
			var page struct {
				Events     []map[string]any `json:"events"`
				NextCursor string           `json:"next_cursor"`
			}
			if err := json.Unmarshal(out, &page); err != nil {
				return err
			}
			// A token event's scopes and parties get columns of their own.
			for _, ev := range page.Events {
				if tok, ok := ev["token"].(map[string]any); ok {
					ev["scopes"], ev["consumer"], ev["supplier"] = tok["scopes"], tok["consumer_orgno"], tok["supplier_orgno"]
				}
			}
			rows, err := json.Marshal(page.Events)
			if err != nil {
				return err
			}
			if err := a.show(cmd, rows, "time", "action", "actor_org", "target", "+actor_client_id", "+actor_person", "+consumer", "+supplier", "+scopes", "+orgs"); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "more: --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "events per page (default 50, at most 500)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "next_cursor of the previous page")
	cmd.Flags().StringVar(&action, "action", "", "only this action: token.issue, or an admin action such as scope.create")
	cmd.Flags().StringVar(&target, "target", "", "only admin changes of this target (scope name, client_id or prefix)")
	cmd.Flags().StringVar(&scope, "scope", "", "only tokens carrying this scope, and admin changes of it")
	cmd.Flags().StringVar(&clientID, "client", "", "only tokens of this client_id, and admin changes of it (--client-id is your own client, the one that authenticates)")
	cmd.Flags().StringVar(&from, "from", "", "events at or after this RFC 3339 time")
	cmd.Flags().StringVar(&to, "to", "", "events before this RFC 3339 time")
	return cmd
}

// raw reports whether records are printed as they came (json, yaml, ids)
// rather than as a table.
func (a *adminCLI) raw() bool { return a.quiet || a.output != "table" }

// idFields name a record, in the order looked for.
var idFields = []string{"client_id", "id", "name", "prefix", "scope", "kid", "subject"}

// printIDs prints the id of each record of body (one, a list, or a key
// set), one per line: what a script needs of a record it created.
func printIDs(out io.Writer, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	var rows []any
	switch t := v.(type) {
	case []any:
		rows = t
	case map[string]any:
		if keys, ok := t["keys"].([]any); ok && len(t) == 1 {
			rows = keys
		} else {
			rows = []any{t}
		}
	}
	for _, r := range rows {
		m, _ := r.(map[string]any)
		for _, f := range idFields {
			if id, ok := m[f].(string); ok && id != "" {
				fmt.Fprintln(out, id)
				break
			}
		}
	}
	return nil
}

// thenShow runs a change that answers nothing (a DELETE that deactivates)
// and then show, which reads the record as the change left it: scripts and
// people see the result, not "done".
func (a *adminCLI) thenShow(change, show func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		var discard bytes.Buffer
		out := cmd.OutOrStdout()
		cmd.SetOut(&discard)
		err := change(cmd, args)
		cmd.SetOut(out)
		if err != nil {
			return err
		}
		return show(cmd, args)
	}
}

// record reads one record to change it: an update sends back what it read
// with the flags given applied, so fields left out stay as they are.
func (a *adminCLI) record(cmd *cobra.Command, scopes []string, path string) (map[string]any, error) {
	cur, err := a.call(cmd, scopes, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(cur, &m); err != nil {
		return nil, err
	}
	return m, nil
}
