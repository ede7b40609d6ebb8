// Package configs embeds the configuration that `portvakt serve --dev` runs
// with, so the dev mode works from any directory. example.yaml documents
// every key and is not embedded.
package configs

import _ "embed"

// Dev is configs/dev.yaml.
//
//go:embed dev.yaml
var Dev []byte
