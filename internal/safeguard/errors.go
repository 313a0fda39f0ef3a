package safeguard

import (
	"errors"
	"fmt"
)

// StalledError says the spec cannot be acted on as written: retrying will not
// help until someone changes it. Reason is the CamelCase reason for the Stalled
// condition; the error text says what to fix.
type StalledError struct {
	Reason string
	Err    error
}

func (e *StalledError) Error() string { return e.Err.Error() }

func (e *StalledError) Unwrap() error { return e.Err }

// Stalled wraps a configuration error with the reason to report.
func Stalled(reason, format string, args ...any) error {
	return &StalledError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// AsStalled returns the StalledError in err's chain, or nil.
func AsStalled(err error) *StalledError {
	var s *StalledError
	if errors.As(err, &s) {
		return s
	}
	return nil
}
