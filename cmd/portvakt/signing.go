package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/portvakt/portvakt/internal/config"
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
func storedKeys(ctx context.Context, cfg *config.Config, st signer.KeyStore, kek *signer.KEK, now func() time.Time, log *slog.Logger, obs signer.Observer) (*signer.Keeper, error) {
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
		Store: st, KEK: kek, Policy: rotationPolicy(cfg), Algorithm: cfg.Signing.Algorithm, Import: imp,
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

// fileKeys is the key set of signing.key_file (generated into data_dir
// when unset) and signing.publish_key_files: no KEK, no rotation.
func fileKeys(cfg *config.Config) (*signer.Set, error) {
	keyFile := cfg.Signing.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "signing-key.pem")
	} else {
		keyFile = cfg.Path(keyFile)
	}
	key, err := signer.LoadOrGenerate(keyFile, cfg.Signing.Algorithm)
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

// signingKeys is the server's key set: kept in the store and rotated when a
// KEK is configured (keeper non-nil, to be run), else from files.
func signingKeys(ctx context.Context, cfg *config.Config, st store.Store, now func() time.Time, log *slog.Logger, obs signer.Observer) (*signer.Set, *signer.Keeper, error) {
	kek, err := loadKEK(cfg)
	if err != nil {
		return nil, nil, err
	}
	if kek == nil {
		keys, err := fileKeys(cfg)
		return keys, nil, err
	}
	k, err := storedKeys(ctx, cfg, st, kek, now, log, obs)
	if err != nil {
		return nil, nil, err
	}
	return k.Set(), k, nil
}
