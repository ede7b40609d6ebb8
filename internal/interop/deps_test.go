package interop

import (
	_ "github.com/coreos/go-oidc/v3/oidc"
	_ "github.com/lestrrat-go/jwx/v3/jwk"
	_ "github.com/lestrrat-go/jwx/v3/jwt"
	_ "golang.org/x/oauth2/jwt"
)
