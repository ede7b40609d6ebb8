package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	sqlitedrv "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/portvakt/portvakt/internal/store"
)

// SQLite primary result codes (the low byte of an extended code).
const (
	sqliteBusy     = 5
	sqliteLocked   = 6
	sqliteIOErr    = 10
	sqliteCantOpen = 14
	// Extended codes of SQLITE_CONSTRAINT that mean "this key exists".
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// classify maps a driver or gorm error onto the store sentinels, keeping err
// in the chain so that logs show the cause. Errors that already carry a
// sentinel, and errors it does not recognise, are returned unchanged.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrReadOnly):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case isUniqueViolation(err):
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var sqlErr *sqlitedrv.Error
	if errors.As(err, &sqlErr) {
		c := sqlErr.Code()
		return c == sqliteConstraintUnique || c == sqliteConstraintPrimaryKey
	}
	return false
}

// isUnavailable reports errors that say "the database cannot answer now"
// rather than "your request is wrong": callers turn them into 503.
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	// database/sql does not export this one.
	if strings.Contains(err.Error(), "sql: database is closed") {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection_exception class
			return true
		case pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "57014", // query_canceled: the statement timeout
			pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var sqlErr *sqlitedrv.Error
	if errors.As(err, &sqlErr) {
		switch sqlErr.Code() & 0xff {
		case sqliteBusy, sqliteLocked, sqliteIOErr, sqliteCantOpen:
			return true
		}
	}
	return false
}

// wrap adds what was being done to a classified error.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlstore: "+format+": %w", append(args, classify(err))...)
}
