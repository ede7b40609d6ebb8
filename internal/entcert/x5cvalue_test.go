package entcert

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// DecodeX5CValue must agree with DecodeX5C on every input.
func TestDecodeX5CValueAgreesWithDecodeX5C(t *testing.T) {
	cert := "MIIBszCCAVmgAwIBAgIUAA=="
	for _, raw := range []string{
		`["` + cert + `"]`, `["` + cert + `","` + cert + `"]`, `"` + cert + `"`, `[]`, `null`, `{}`, `[1]`,
		`[""]`, `["!!!"]`, `["TUlJ"]`, `["TUlJQg"]`, `[["x"]]`,
		`[` + strings.TrimSuffix(strings.Repeat(`"`+cert+`",`, 11), ",") + `]`,
		`["` + strings.Repeat("A", 30000) + `"]`,
	} {
		t.Run(raw[:min(len(raw), 24)], func(t *testing.T) {
			want, wantErr := DecodeX5C(json.RawMessage(raw))
			var v any
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				t.Fatal(err)
			}
			got, gotErr := DecodeX5CValue(v)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("DecodeX5C err %v, DecodeX5CValue err %v", wantErr, gotErr)
			}
			if len(got) != len(want) {
				t.Fatalf("lengths %d != %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("member %d differs", i)
				}
			}
		})
	}
}
