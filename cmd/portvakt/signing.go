package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/hsm"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
)

// loadKEK is the configured key-encryption key: PORTVAKT_SIGNING_KEK, else
// signing.kek_file; nil when neither is set (keys from files, no rotation).
func loadKEK(cfg *config.Config) (*signer.KEK, error) {
	file := cfg.Signing.KEKFile
	if file != "" {
		file = cfg.Path(file)
	}
	return signer.LoadKEK(os.Getenv(signer.KEKEnv), file)
}

// rotationPolicy is the schedule of cfg. A retired key stays published for
// the longest lifetime any token can have plus the skew.
func rotationPolicy(cfg *config.Config) signer.Policy {
	longest := max(cfg.Token.DefaultLifetime, records.MaxClientLifetime*time.Second)
	return signer.Policy{Interval: cfg.Signing.Rotation.Interval, PrePublish: cfg.Signing.Rotation.PrePublish,
		Retain: longest + cfg.Token.ClockSkew}
}

// storedKeys is the Keeper of the signing keys kept in the store. On an
// empty store the key of signing.key_file, when set, becomes the first
// CURRENT key; else one is generated.
func storedKeys(ctx context.Context, cfg *config.Config, st signer.KeyStore, v signer.Vault, kek *signer.KEK, now func() time.Time, log *slog.Logger, obs signer.Observer) (*signer.Keeper, error) {
	var imp *signer.Key
	if cfg.Signing.KeyFile != "" {
		b, err := os.ReadFile(cfg.Path(cfg.Signing.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("signing.key_file: %w", err)
		}
		priv, err := signer.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("signing.key_file: %w", err)
		}
		if imp, err = signer.NewKey(priv, keyAlg(priv)); err != nil {
			return nil, fmt.Errorf("signing.key_file: %w", err)
		}
	}
	k, err := signer.NewKeeper(ctx, signer.KeeperConfig{
		Store: st, Vault: v, Policy: rotationPolicy(cfg), Algorithm: cfg.Signing.Algorithm, Import: imp, ImportKEK: kek,
		Owner: replicaName(), PollInterval: cfg.Rules.PollInterval, Now: now, Log: log, Observer: obs,
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return k, nil
}

// replicaName names this process in the rotation lease.
func replicaName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

func keyAlg(priv any) string {
	if _, ok := priv.(*ecdsa.PrivateKey); ok {
		return "ES256"
	}
	return "RS256"
}

// fileKeys is the key set of signing.key_file (generated there when the
// file does not exist) and signing.publish_key_files: no KEK, no rotation.
func fileKeys(cfg *config.Config) (*signer.Set, error) {
	key, err := signer.LoadOrGenerate(cfg.Path(cfg.Signing.KeyFile), cfg.Signing.Algorithm)
	if err != nil {
		return nil, err
	}
	var published []*signer.Key
	for _, f := range cfg.Signing.PublishKeyFiles {
		b, err := os.ReadFile(cfg.Path(f))
		if err != nil {
			return nil, fmt.Errorf("signing.publish_key_files: %w", err)
		}
		priv, err := signer.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("signing.publish_key_files: %s: %w", f, err)
		}
		k, err := signer.NewKey(priv, keyAlg(priv))
		if err != nil {
			return nil, fmt.Errorf("signing.publish_key_files: %s: %w", f, err)
		}
		published = append(published, k)
	}
	return signer.NewSet(key, published...)
}

// keyVault is where the private parts of the keys kept in the database
// live: the PKCS#11 token when signing.pkcs11 is set (with the KEK, when
// one is set too, for the keys it sealed before), else the KEK. A nil vault
// means keys from files. The caller closes token when it is not nil.
func keyVault(cfg *config.Config) (v signer.Vault, kek *signer.KEK, token *hsm.Token, err error) {
	kek, err = loadKEK(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if !cfg.Signing.PKCS11.Configured() {
		if kek == nil {
			return nil, nil, nil, nil
		}
		return kek, kek, nil, nil
	}
	token, err = hsm.Connect(cfg.Signing.PKCS11.HSM())
	if err != nil {
		return nil, nil, nil, err
	}
	return signer.Vaults(token, kek), kek, token, nil
}

// signingKeys is the server's key set: kept in the database and rotated
// when a KEK or an HSM is configured (keeper non-nil, to be run), else the
// static signing.key_file. Without any key source it refuses. The caller
// closes token when it is not nil.
func signingKeys(ctx context.Context, cfg *config.Config, st store.Store, now func() time.Time, log *slog.Logger, obs signer.Observer) (_ *signer.Set, _ *signer.Keeper, token *hsm.Token, err error) {
	v, kek, token, err := keyVault(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if v == nil {
		if cfg.Signing.KeyFile == "" {
			return nil, nil, nil, errors.New("signing: " + config.NoKeySource)
		}
		keys, err := fileKeys(cfg)
		return keys, nil, nil, err
	}
	k, err := storedKeys(ctx, cfg, st, v, kek, now, log, obs)
	if err != nil {
		if token != nil {
			_ = token.Close()
		}
		return nil, nil, nil, err
	}
	return k.Set(), k, token, nil
}
