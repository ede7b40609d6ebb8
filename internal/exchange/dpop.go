package exchange

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/dpop"
)

// checkProof verifies the request's DPoP proof (RFC 9449 section 4.3)
// against POST {issuer}token. It runs in the key callback after the rate
// limits and before the client's key or certificate is looked at: a proof
// costs one signature, less than a certificate chain, and a request whose
// proof fails costs no more than that.
func (e *Exchanger) checkProof(ctx context.Context, proof string) (*dpop.Proof, error) {
	_, end := e.cfg.Observer.Step(ctx, StepVerifyProof)
	p, err := e.proofs.Verify(proof, dpop.Request{Method: http.MethodPost, URL: e.cfg.Issuer + "token"})
	var perr error
	if err != nil {
		perr = proofError(err)
	}
	end(perr)
	return p, perr
}

// proofError maps a pkg/dpop error to the protocol's.
func proofError(err error) error {
	var de *dpop.Error
	if !errors.As(err, &de) {
		return protocol.ServerError(err)
	}
	if de.Nonce {
		return protocol.UseDPoPNonce("%s", de.Description).WithCause(err)
	}
	return protocol.InvalidDPoPProof("%s", de.Description).WithCause(err)
}

// recordProof makes the proof single use: its (jkt, jti) insert, atomic
// across replicas, conflicts while the proof's window lasts. It runs after
// the decision, when only the replay insert is left: a request refused
// earlier writes nothing.
func (e *Exchanger) recordProof(ctx context.Context, p *dpop.Proof, now time.Time) error {
	ctx, end := e.cfg.Observer.Step(ctx, StepRecordProof)
	err := e.tokens.InsertDPoPProof(ctx, store.DPoPProof{JKT: p.JKT, JTI: p.JTI, Until: p.Until}, now)
	end(err)
	if errors.Is(err, store.ErrConflict) {
		return protocol.InvalidDPoPProof("The DPoP proof has been used before: make a new proof, with a fresh jti, for every request").WithCause(err)
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}
