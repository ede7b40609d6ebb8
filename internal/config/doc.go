// Package config owns portvakt's configuration: one struct with safe defaults,
// loaded from one YAML file plus PORTVAKT_* environment variables through
// viper, and Validate, which reports every problem at once with the key's name.
// It also turns the records declared in the file into store records.
package config
