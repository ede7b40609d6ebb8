// Package hsmtest gives tests the PKCS#11 token that scripts/softhsm.sh
// makes (a throwaway SoftHSM2 token), from the variables its env command
// prints. Without them a test skips, loudly, and under CI fails. For tests
// only.
package hsmtest
