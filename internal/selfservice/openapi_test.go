package selfservice

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestOpenAPILoads(t *testing.T) {
	_ = openapi3.NewLoader()
}
