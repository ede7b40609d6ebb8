package signer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// KeyStore is what a Keeper needs of the store.
type KeyStore interface {
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	ChangeSigningKeys(ctx context.Context, c store.SigningKeyChange) error
	TakeLease(ctx context.Context, l store.Lease) (bool, error)
}

// KeeperConfig configures a Keeper. Store, Vault and Now are required.
type KeeperConfig struct {
	Store KeyStore
	// Vault keeps the private parts: a *KEK seals them into the store, an
	// HSM keeps them in its token.
	Vault  Vault
	Policy Policy
	// Algorithm is what new keys sign with (RS256 when empty).
	Algorithm string
	// Import is the first CURRENT key of an empty store (the key of
	// signing.key_file), sealed under ImportKEK; nil generates one.
	Import    *Key
	ImportKEK *KEK
	// Owner names this replica in the rotation lease.
	Owner string
	// PollInterval is how often the keys are reloaded (default 5s); the
	// Policy's Propagation when that is zero.
	PollInterval time.Duration
	// RotateEvery is how often a replica tries for the rotation lease and,
	// holding it, applies the Policy (default 1m): the schedule is in days,
	// so this costs one write a minute per replica, not one a poll.
	RotateEvery time.Duration
	Now         func() time.Time
	Log         *slog.Logger
	// Observer is told the state of the stored keys at every reload
	// (metrics); nil observes nothing.
	Observer Observer
}

// Observer is told what the stored keys look like (metrics). KeysLoaded
// runs on the keeper's goroutine and must not block.
type Observer interface {
	// KeysLoaded is told the state of the keys after each reload, every
	// PollInterval on every replica.
	KeysLoaded(KeyState)
}

// KeyState is the stored keys at one reload, and the schedule they follow.
type KeyState struct {
	// CurrentActivated is when the CURRENT key began to sign.
	CurrentActivated time.Time
	// NextPublished is when the NEXT key was published; zero = none.
	NextPublished time.Time
	// Retired counts the RETIRED keys still published, and RetiredLeaves
	// is when the first of them leaves the JWKS (zero when there is none).
	Retired       int
	RetiredLeaves time.Time
	// Policy is the rotation schedule.
	Policy Policy
}

// stateOf is the state of keys at now under p.
func stateOf(keys []store.SigningKey, now time.Time, p Policy) KeyState {
	s := KeyState{Policy: p}
	for _, k := range keys {
		switch {
		case k.State == store.SigningKeyCurrent:
			s.CurrentActivated = k.ActivatedAt
		case k.State == store.SigningKeyNext:
			s.NextPublished = k.PublishedAt
		case k.State == store.SigningKeyRetired && Published(k, now):
			s.Retired++
			if s.RetiredLeaves.IsZero() || k.RemoveAfter.Before(s.RetiredLeaves) {
				s.RetiredLeaves = k.RemoveAfter
			}
		}
	}
	return s
}

// Keeper keeps a Set in step with the stored keys: every replica reloads
// them each PollInterval, and the one replica holding the rotation lease
// applies the Policy first. A step computed from a stale view fails in the
// store (ErrConflict) and is computed again at the next tick.
type Keeper struct {
	cfg KeeperConfig
	set *Set
	// Only the goroutine calling Tick touches these.
	rotated time.Time // when Tick last tried to rotate
	loaded  string    // what the Set was built from (see fingerprint)
}

// NewKeeper loads the stored keys, first storing a CURRENT one when there
// is none (Import, or a new key), and returns a Keeper whose Set signs with
// the CURRENT one. A KEK that does not open the stored keys is ErrWrongKEK.
func NewKeeper(ctx context.Context, cfg KeeperConfig) (*Keeper, error) {
	if cfg.Store == nil || cfg.Vault == nil || cfg.Now == nil {
		return nil, errors.New("signer: a keeper needs a store, a vault (a key-encryption key or an HSM) and a clock")
	}
	if cfg.Import != nil && cfg.ImportKEK == nil {
		return nil, errors.New("signer: an imported key is sealed under a key-encryption key; none is given")
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = "RS256"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RotateEvery <= 0 {
		cfg.RotateEvery = time.Minute
	}
	if cfg.Policy.Propagation == 0 {
		cfg.Policy.Propagation = cfg.PollInterval
	}
	k := &Keeper{cfg: cfg}
	keys, err := cfg.Store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if cur, _ := byState(keys); cur == nil {
		now := cfg.Now()
		var c store.SigningKeyChange
		if cfg.Import != nil && len(keys) == 0 {
			r, err := Record(cfg.Import, cfg.ImportKEK, store.SigningKeyCurrent, now)
			if err != nil {
				return nil, err
			}
			c.Create = []store.SigningKey{r}
		} else if c, err = cfg.Policy.Step(keys, now, k.NewKey); err != nil {
			return nil, err
		}
		// Replicas starting together on an empty store race here; one
		// CURRENT key wins (a unique index), the others use it.
		if err := cfg.Store.ChangeSigningKeys(ctx, c); err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("signer: first signing key: %w", err)
		}
	}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Set is the keeper's key set; Replace keeps it current, so holders of it
// need no other handle.
func (k *Keeper) Set() *Set { return k.set }

// NewKey generates a key of the configured algorithm in the vault as a
// stored key (a NewKeyFunc).
func (k *Keeper) NewKey(state string, now time.Time) (store.SigningKey, error) {
	return Generator(k.cfg.Algorithm, k.cfg.Vault)(state, now)
}

// Generator is the NewKeyFunc that generates keys for alg in v.
func Generator(alg string, v Vault) NewKeyFunc {
	return func(state string, now time.Time) (store.SigningKey, error) {
		key, kept, err := v.Generate(alg)
		if err != nil {
			return store.SigningKey{}, err
		}
		return record(key, kept, state, now)
	}
}

// Tick is one turn: every RotateEvery, rotate when this replica holds the
// lease; then reload. Tick is not safe for concurrent use (Run calls it).
func (k *Keeper) Tick(ctx context.Context) error {
	now := k.cfg.Now()
	if !k.rotated.IsZero() && now.Sub(k.rotated) < k.cfg.RotateEvery && !now.Before(k.rotated) {
		return k.reload(ctx)
	}
	k.rotated = now
	held, err := k.cfg.Store.TakeLease(ctx, store.Lease{Name: store.LeaseSigningKeyRotation, Owner: k.cfg.Owner,
		Now: now, TTL: 3 * k.cfg.RotateEvery})
	if err != nil {
		return err
	}
	if held {
		keys, err := k.cfg.Store.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		c, err := k.cfg.Policy.Step(keys, now, k.NewKey)
		if err != nil {
			return err
		}
		if len(c.Create)+len(c.Update)+len(c.Delete) > 0 {
			err := k.cfg.Store.ChangeSigningKeys(ctx, c)
			switch {
			case errors.Is(err, store.ErrConflict):
				k.cfg.Log.InfoContext(ctx, "signing key rotation step lost to another writer", "err", err)
			case err != nil:
				return fmt.Errorf("signer: rotation: %w", err)
			default:
				k.cfg.Log.InfoContext(ctx, "signing keys rotated", "created", len(c.Create), "updated", len(c.Update), "removed", len(c.Delete))
			}
		}
	}
	return k.reload(ctx)
}

func (k *Keeper) reload(ctx context.Context) error {
	keys, err := k.cfg.Store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	now := k.cfg.Now()
	if k.cfg.Observer != nil {
		k.cfg.Observer.KeysLoaded(stateOf(keys, now, k.cfg.Policy))
	}
	fp := fingerprint(keys, now)
	if k.set != nil && fp == k.loaded {
		return nil // nothing changed: no need to open the key again
	}
	s, err := SetFromStore(keys, k.cfg.Vault, now)
	if err != nil {
		return err
	}
	k.loaded = fp
	if k.set == nil {
		k.set = s
		return nil
	}
	k.set.Replace(s)
	return nil
}

// fingerprint says what SetFromStore would build from keys at now: each
// published key with its state.
func fingerprint(keys []store.SigningKey, now time.Time) string {
	var b strings.Builder
	for _, k := range keys {
		if Published(k, now) {
			b.WriteString(k.KID + "=" + k.State + ";")
		}
	}
	return b.String()
}

// Run ticks every PollInterval until ctx ends. A failed tick is logged and
// the Set keeps its keys until the next one succeeds.
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(k.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Tick(ctx); err != nil && ctx.Err() == nil {
				k.cfg.Log.ErrorContext(ctx, "signing keys", "err", err)
			}
		}
	}
}
