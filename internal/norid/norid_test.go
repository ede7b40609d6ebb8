package norid

import "testing"

func TestValidOrg(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"ok/brreg", "974760673", true},  // Brønnøysundregistrene
		{"ok/digdir", "991825827", true}, // Digitaliseringsdirektoratet
		{"ok/check-11-means-0", "000000000", true},
		{"fail/wrong-check-digit", "974760674", false},
		{"fail/short", "97476067", false},
		{"fail/long", "9747606730", false},
		{"fail/letters", "97476067a", false},
		{"fail/empty", "", false},
		{"fail/spaces", "974 760 673", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ValidOrg(c.in); got != c.want {
				t.Fatalf("ValidOrg(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestCheckDigitTenIsInvalid(t *testing.T) {
	// Find an 8-digit prefix whose check digit would be 10: no suffix may validate.
	for n := 10000000; n < 10000100; n++ {
		p := itoa8(n)
		if _, ok := CompleteOrg(p); ok {
			continue
		}
		for d := '0'; d <= '9'; d++ {
			if ValidOrg(p + string(d)) {
				t.Fatalf("%s%c validated though its check digit is 10", p, d)
			}
		}
		return
	}
	t.Fatal("no prefix with check digit 10 found in range")
}

func TestCompleteOrg(t *testing.T) {
	got, ok := CompleteOrg("97476067")
	if !ok || got != "974760673" {
		t.Fatalf("CompleteOrg = %q, %v", got, ok)
	}
}

func TestValidPID(t *testing.T) {
	// Build a valid number from a birth date and individual number, then check mutations fail.
	valid := makePID(t, "010190", "123")
	if !ValidPID(valid) {
		t.Fatalf("constructed %s does not validate", valid)
	}
	for i := 9; i < 11; i++ {
		b := []byte(valid)
		b[i] = '0' + (b[i]-'0'+1)%10
		if ValidPID(string(b)) {
			t.Fatalf("mutated check digit %d still validates: %s", i, b)
		}
	}
	for _, bad := range []string{"", "0101901234", "010190123456", "0101901234x"} {
		if ValidPID(bad) {
			t.Fatalf("ValidPID(%q) = true", bad)
		}
	}
}

func makePID(t *testing.T, date, ind string) string {
	t.Helper()
	for k := 0; k < 1000; k++ {
		base := date + itoa3((k+mustAtoi(ind))%1000)
		s := 0
		for i, w := range pidWeights1 {
			s += int(base[i]-'0') * w
		}
		k1 := checkDigit(s)
		if k1 < 0 {
			continue
		}
		base += string(rune('0' + k1))
		s = 0
		for i, w := range pidWeights2 {
			s += int(base[i]-'0') * w
		}
		k2 := checkDigit(s)
		if k2 < 0 {
			continue
		}
		return base + string(rune('0'+k2))
	}
	t.Fatal("no valid pid")
	return ""
}

func itoa8(n int) string {
	b := []byte("00000000")
	for i := 7; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b)
}

func itoa3(n int) string { return itoa8(n)[5:] }

func mustAtoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
