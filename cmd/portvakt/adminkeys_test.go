package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestKeyLines: each client key shows its kid, uploader and expiry, marked
// when it expires within 30 days or has expired, in lines of at most 80
// columns, at a pinned now.
func TestKeyLines(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	row := func(kid, by string, exp time.Time) map[string]any {
		return map[string]any{"client_orgno": "310000035", "keys": []any{
			map[string]any{"kid": kid, "uploaded_by": by, "expires": exp.Format(time.RFC3339Nano)},
		}}
	}
	for _, c := range []struct {
		name string
		row  map[string]any
		want []string
	}{
		{"ok/fresh", row("key-1", "310000043", now.Add(200*24*time.Hour)),
			[]string{"    key: key-1  uploaded_by: 310000043  expires: 2027-06-20T08:00:00Z"}},
		{"ok/own-org", row("key-1", "", now.Add(200*24*time.Hour)),
			[]string{"    key: key-1  uploaded_by: 310000035  expires: 2027-06-20T08:00:00Z"}},
		{"ok/31-days", row("k", "310000035", now.Add(31*24*time.Hour)),
			[]string{"    key: k  uploaded_by: 310000035  expires: 2027-01-02T08:00:00Z"}},
		{"ok/30-days", row("k", "310000035", now.Add(30*24*time.Hour)),
			[]string{"    key: k  uploaded_by: 310000035", "      expires: 2027-01-01T08:00:00Z (EXPIRES IN 30 DAYS)"}},
		{"ok/hours", row("k", "310000035", now.Add(5*time.Hour)),
			[]string{"    key: k  uploaded_by: 310000035", "      expires: 2026-12-02T13:00:00Z (EXPIRES IN 1 DAY)"}},
		{"ok/expired", row("k", "310000035", now.Add(-time.Second)),
			[]string{"    key: k  uploaded_by: 310000035  expires: 2026-12-02T07:59:59Z (EXPIRED)"}},
		{"ok/expires-now", row("k", "310000035", now),
			[]string{"    key: k  uploaded_by: 310000035  expires: 2026-12-02T08:00:00Z (EXPIRED)"}},
		{"ok/thumbprint-kid-wraps", row("bO2_SjWxyW-uIJJIbVXFCSiliNaBPslX57JKoJMP5H8", "310000035", now.Add(10*24*time.Hour)),
			[]string{"    key: bO2_SjWxyW-uIJJIbVXFCSiliNaBPslX57JKoJMP5H8  uploaded_by: 310000035",
				"      expires: 2026-12-12T08:00:00Z (EXPIRES IN 10 DAYS)"}},
		{"ok/no-keys", map[string]any{"client_orgno": "310000035", "keys": []any{}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := keyLines(c.row, now)
			if !slices.Equal(got, c.want) {
				t.Fatalf("got\n%q\nwant\n%q", got, c.want)
			}
			for _, l := range got {
				if utf8.RuneCountInString(l) > tableWidth {
					t.Fatalf("%q is wider than %d", l, tableWidth)
				}
			}
		})
	}
}

// TestAdminClientsShowKeyExpiry: `admin clients get` and `list` show each
// key with who uploaded it and its expiry, one year after the upload time
// the server stored.
func TestAdminClientsShowKeyExpiry(t *testing.T) {
	e := startServer(t)
	admin := e.certCreds(org(1), cliPlatformClient)
	id := e.clientID(e.mustCLI(with(admin, "admin", "clients", "create", "--json", "--name", "integration",
		"--description", "has a key", "--scope", "portvakt:scopes.read")...))
	keyFile := ecKeyFile(t, filepath.Join(e.dir, "integration.key"))
	e.mustCLI(with(admin, "admin", "clients", "keys", "upload", id, keyFile, "--key-id", "key-1")...)
	var stored struct {
		Keys []struct {
			KID        string    `json:"kid"`
			Created    time.Time `json:"created"`
			Expires    time.Time `json:"expires"`
			UploadedBy string    `json:"uploaded_by"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(e.mustCLI(with(admin, "admin", "clients", "get", id, "--json")...)), &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Keys) != 1 || !stored.Keys[0].Expires.Equal(stored.Keys[0].Created.AddDate(1, 0, 0)) {
		t.Fatalf("stored keys %+v: want one, expiring a year after its upload", stored.Keys)
	}
	want := "    key: key-1  uploaded_by: " + stored.Keys[0].UploadedBy + "  expires: " + stored.Keys[0].Expires.UTC().Format(time.RFC3339)
	if stored.Keys[0].UploadedBy == "" {
		t.Fatal("no uploaded_by")
	}
	for _, args := range [][]string{{"admin", "clients", "get", id}, {"admin", "clients", "list"}} {
		out := e.mustCLI(with(admin, args...)...)
		lines := strings.Split(out, "\n")
		if !slices.Contains(lines, want) {
			t.Fatalf("%s:\n%s\nwant the line %q", strings.Join(args, " "), out, want)
		}
		if strings.Contains(out, "EXPIRE") {
			t.Fatalf("a fresh key is marked:\n%s", out)
		}
	}
}
