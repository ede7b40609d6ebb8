package signer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

var policy = Policy{Interval: 90 * day, PrePublish: day, Retain: 2*time.Hour + 10*time.Second}

// fakeNewKey makes records without keys: Step only needs their states.
func fakeNewKey(state string, now time.Time) (store.SigningKey, error) {
	k := store.SigningKey{KID: "new-" + state, State: state, PublishedAt: now}
	if state == store.SigningKeyCurrent {
		k.ActivatedAt = now
	}
	return k, nil
}

func describe(c store.SigningKeyChange) []string {
	var out []string
	for _, k := range c.Create {
		out = append(out, "create "+k.KID+" "+k.State)
	}
	for _, u := range c.Update {
		out = append(out, "update "+u.Key.KID+" "+u.From+"->"+u.Key.State)
	}
	for _, kid := range c.Delete {
		out = append(out, "delete "+kid)
	}
	return out
}

func TestPolicyStep(t *testing.T) {
	cur := store.SigningKey{KID: "a", State: store.SigningKeyCurrent, PublishedAt: t0, ActivatedAt: t0}
	next := store.SigningKey{KID: "b", State: store.SigningKeyNext, PublishedAt: t0.Add(89 * day)}
	retired := store.SigningKey{KID: "z", State: store.SigningKeyRetired, RemoveAfter: t0.Add(time.Hour)}
	cases := []struct {
		name string
		keys []store.SigningKey
		at   time.Time
		want []string
	}{
		{"ok/empty-store-makes-current", nil, t0, []string{"create new-CURRENT CURRENT"}},
		{"ok/young-current-nothing", []store.SigningKey{cur}, t0.Add(89*day - time.Second), nil},
		{"ok/current-due-makes-next", []store.SigningKey{cur}, t0.Add(89 * day), []string{"create new-NEXT NEXT"}},
		{"ok/next-published-too-briefly-waits", []store.SigningKey{cur, next}, t0.Add(90*day - time.Second), nil},
		{"ok/next-published-long-enough-activates", []store.SigningKey{cur, next}, t0.Add(90 * day),
			[]string{"update a CURRENT->RETIRED", "update b NEXT->CURRENT"}},
		{"ok/next-without-current-activates", []store.SigningKey{next}, t0, []string{"update b NEXT->CURRENT"}},
		{"ok/retired-stays-until-remove-after", []store.SigningKey{cur, retired}, t0.Add(time.Hour - time.Second), nil},
		{"ok/retired-leaves-at-remove-after", []store.SigningKey{cur, retired}, t0.Add(time.Hour), []string{"delete z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := policy.Step(tc.keys, tc.at, fakeNewKey)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(c); !slices.Equal(got, tc.want) {
				t.Fatalf("step = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("ok/propagation-delays-activation", func(t *testing.T) {
		p := policy
		p.Propagation = time.Second
		keys := []store.SigningKey{cur, next}
		for _, tc := range []struct {
			at   time.Time
			want int
		}{{t0.Add(90 * day), 0}, {t0.Add(90*day + time.Second), 2}} {
			c, err := p.Step(keys, tc.at, fakeNewKey)
			if err != nil || len(c.Update) != tc.want {
				t.Errorf("at %v: %q, %v; want %d updates", tc.at, describe(c), err, tc.want)
			}
		}
	})
	t.Run("ok/activation-times", func(t *testing.T) {
		at := t0.Add(90 * day)
		c, err := policy.Step([]store.SigningKey{cur, next}, at, fakeNewKey)
		if err != nil {
			t.Fatal(err)
		}
		ret, act := c.Update[0].Key, c.Update[1].Key
		if !ret.RetiredAt.Equal(at) || !ret.RemoveAfter.Equal(at.Add(policy.Retain)) || !act.ActivatedAt.Equal(at) {
			t.Fatalf("retired %+v, activated %+v", ret, act)
		}
	})
}

func TestPolicyByHand(t *testing.T) {
	cur := store.SigningKey{KID: "a", State: store.SigningKeyCurrent, ActivatedAt: t0}
	next := store.SigningKey{KID: "b", State: store.SigningKeyNext, PublishedAt: t0}
	retired := store.SigningKey{KID: "z", State: store.SigningKeyRetired, RemoveAfter: t0.Add(time.Hour)}
	keys := []store.SigningKey{cur, next, retired}
	now := t0.Add(time.Minute)

	c, err := policy.RotateNow(keys, now, fakeNewKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(c), []string{"create new-CURRENT CURRENT", "update a CURRENT->RETIRED"}; !slices.Equal(got, want) {
		t.Errorf("rotate --now = %q, want %q", got, want)
	}
	if ra := c.Update[0].Key.RemoveAfter; !ra.Equal(now) {
		t.Errorf("rotate --now: the old key stays published until %v, want now", ra)
	}
	if _, err := policy.Rotate(keys, now, fakeNewKey); err == nil {
		t.Error("rotate with a NEXT key present succeeded")
	}
	c, err = policy.Rotate([]store.SigningKey{cur}, now, fakeNewKey)
	if err != nil || !slices.Equal(describe(c), []string{"create new-NEXT NEXT"}) {
		t.Errorf("rotate = %q, %v", describe(c), err)
	}
	for _, tc := range []struct {
		kid  string
		want string // "" = an error
	}{{"b", "update b NEXT->RETIRED"}, {"z", "delete z"}, {"a", ""}, {"nope", ""}} {
		c, err := policy.Retire(keys, tc.kid, now)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("retire %s succeeded: %q", tc.kid, describe(c))
		case tc.want != "" && (err != nil || !slices.Equal(describe(c), []string{tc.want})):
			t.Errorf("retire %s = %q, %v; want %q", tc.kid, describe(c), err, tc.want)
		}
	}
}

func newKEK(t *testing.T) *KEK {
	t.Helper()
	b := make([]byte, KEKSize)
	_, _ = rand.Read(b)
	k, err := NewKEK(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKEK(t *testing.T) {
	kek := newKEK(t)
	key, err := Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Record(key, kek, store.SigningKeyCurrent, t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ok/roundtrip", func(t *testing.T) {
		s, err := SetFromStore([]store.SigningKey{rec}, kek, t0)
		if err != nil {
			t.Fatal(err)
		}
		if s.Active().ID != key.ID {
			t.Fatalf("active %s, want %s", s.Active().ID, key.ID)
		}
	})
	t.Run("ok/no-plaintext-in-record", func(t *testing.T) {
		der, err := x509.MarshalPKCS8PrivateKey(key.Private)
		if err != nil {
			t.Fatal(err)
		}
		d := key.Private.(*ecdsa.PrivateKey).D.Bytes()
		if bytes.Contains(rec.PrivateSealed, d) || bytes.Contains(rec.PrivateSealed, der) || bytes.Contains(rec.PublicJWK, []byte(`"d"`)) {
			t.Fatal("the record holds the private key in clear")
		}
	})
	t.Run("fail/wrong-kek", func(t *testing.T) {
		_, err := SetFromStore([]store.SigningKey{rec}, newKEK(t), t0)
		if !errors.Is(err, ErrWrongKEK) || !strings.Contains(err.Error(), "PORTVAKT_SIGNING_KEK") {
			t.Fatalf("err = %v, want ErrWrongKEK naming the setting", err)
		}
	})
	t.Run("fail/sealed-for-another-kid", func(t *testing.T) {
		if _, err := kek.Open("other", rec.PrivateSealed); !errors.Is(err, ErrWrongKEK) {
			t.Fatalf("err = %v, want ErrWrongKEK", err)
		}
	})
	t.Run("fail/kek-size", func(t *testing.T) {
		for _, s := range []string{"", "c2hvcnQ=", strings.Repeat("A", 200)} {
			if _, err := ParseKEK(s); err == nil {
				t.Errorf("ParseKEK(%q) succeeded", s)
			}
		}
	})
	t.Run("fail/no-current", func(t *testing.T) {
		next := rec
		next.State = store.SigningKeyNext
		if _, err := SetFromStore([]store.SigningKey{next}, kek, t0); !errors.Is(err, ErrNoCurrentKey) {
			t.Fatalf("err = %v", err)
		}
	})
}
