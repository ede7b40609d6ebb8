//go:build linux || darwin

package server

import (
	"log/slog"
	"syscall"
)

// OpenFileReserve is what the process needs besides the public listener's
// connections: database pools, the ops listener, log and key files.
const OpenFileReserve = 512

// RaiseOpenFileLimit raises the open-file soft limit (RLIMIT_NOFILE) to
// need, up to the hard limit, and logs when even that is below need: the
// connection cap could then not be reached, and accept would fail first.
func RaiseOpenFileLimit(need uint64, log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read the open-file limit", "err", err)
		return
	}
	if lim.Cur >= need {
		return
	}
	want := min(need, lim.Max)
	if want > lim.Cur {
		raised := syscall.Rlimit{Cur: want, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("cannot raise the open-file limit", "err", err, "soft", lim.Cur, "hard", lim.Max, "need", need)
			return
		}
		log.Info("raised the open-file limit for the connection cap", "from", lim.Cur, "to", want)
	}
	if want < need {
		log.Warn("the open-file hard limit is below what the connection cap needs: lower server.max_connections or raise the limit (ulimit -n)",
			"hard", lim.Max, "need", need)
	}
}
