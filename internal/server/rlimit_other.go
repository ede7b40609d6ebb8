//go:build !(linux || darwin)

package server

import "log/slog"

// OpenFileReserve is what the process needs besides the public listener's
// connections.
const OpenFileReserve = 512

// RaiseOpenFileLimit does nothing here: it is implemented for Linux and
// macOS, where portvakt is deployed.
func RaiseOpenFileLimit(need uint64, log *slog.Logger) {}
