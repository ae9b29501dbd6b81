package provider

import (
	"context"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/astral/idp/provider/keys"
)

// signJWT signs claims as a compact JWS with the current key and the given typ header.
func signJWT(ctx context.Context, km *keys.Manager, claims any, typ string) (string, error) {
	k, err := km.Signing(ctx)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshal claims: %w", err)
	}
	return signPayload(k, payload, typ)
}

// signPayload signs payload as a compact JWS with k: alg and kid in the header, and
// typ when not empty (op's tokens have none).
func signPayload(k keys.Key, payload []byte, typ string) (string, error) {
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Algorithm, Key: &jose.JSONWebKey{Key: k.Private, KeyID: k.ID}}, opts)
	if err != nil {
		return "", fmt.Errorf("make signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return jws.CompactSerialize()
}
