// Package config owns portvakt's configuration: one struct with safe defaults,
// loaded from one YAML file plus PORTVAKT_* environment variables through
// viper, and Validate, which reports every problem at once with the key's name.
//
// Problems are reported for the person editing the file: an unknown key names
// the nearest known one, a value of the wrong type names the type expected, a
// duration without a unit says so, a YAML syntax error gives the line of the
// problem, and each problem carries its file line or the PORTVAKT_* variable
// it came from (problems.go). Parse problems, invalid values and missing
// trust files come back in one list (Check).
// It also turns the records declared in the file into store records.
package config
