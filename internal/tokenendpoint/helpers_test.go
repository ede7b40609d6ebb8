package tokenendpoint_test

import (
	"crypto/x509"
	"io"
	"log/slog"

	"github.com/portvakt/portvakt/internal/store"
)

type x509Certificate = x509.Certificate

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type storeRecords = store.StaticRecords
