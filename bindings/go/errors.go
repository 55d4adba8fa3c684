package mamba3rt

/*
#include "mamba3rt.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// Status is a C status code (m3_status) other than M3_OK.
type Status int

// The status codes of include/mamba3rt.h.
const (
	StatusInvalidArgument    Status = C.M3_ERR_INVALID_ARGUMENT
	StatusIO                 Status = C.M3_ERR_IO
	StatusFormat             Status = C.M3_ERR_FORMAT
	StatusUnsupported        Status = C.M3_ERR_UNSUPPORTED
	StatusOutOfMemory        Status = C.M3_ERR_OUT_OF_MEMORY
	StatusBackendUnavailable Status = C.M3_ERR_BACKEND_UNAVAILABLE
	StatusBufferTooSmall     Status = C.M3_ERR_BUFFER_TOO_SMALL
	StatusModelMismatch      Status = C.M3_ERR_MODEL_MISMATCH
	StatusSessionBusy        Status = C.M3_ERR_SESSION_BUSY
	StatusInternal           Status = C.M3_ERR_INTERNAL
	StatusLimitExceeded      Status = C.M3_ERR_LIMIT_EXCEEDED // a configured limit, e.g. an engine's max streams or WithMaxSessions
	StatusTimeout            Status = C.M3_ERR_TIMEOUT        // nothing arrived within the timeout
	StatusStateLost          Status = C.M3_ERR_STATE_LOST     // a GPU failed in an earlier call: reset or restore the session
)

// String is the C name of the status, e.g. "M3_ERR_FORMAT".
func (s Status) String() string { return C.GoString(C.m3_status_name(C.m3_status(s))) }

// Error is a failed call: the operation, the C status and the library's message (which names
// the file, tensor, argument or position at fault).
type Error struct {
	Op      string
	Status  Status
	Message string
	closed  bool
}

// Error formats as "mamba3rt: OP: STATUS_NAME: message".
func (e *Error) Error() string {
	return fmt.Sprintf("mamba3rt: %s: %s: %s", e.Op, e.Status, e.Message)
}

// Is makes errors.Is(err, ErrClosed) true for calls on closed values, and
// errors.Is(err, ErrTimeout) true for StatusTimeout.
func (e *Error) Is(target error) bool {
	return (target == ErrClosed && e.closed) || (target == ErrTimeout && e.Status == StatusTimeout)
}

// ErrClosed matches (with errors.Is) the error of any method called on a closed value.
var ErrClosed = errors.New("mamba3rt: use of a closed handle")

// ErrTimeout matches (with errors.Is) the error of a Stream.Next that got no event in time.
var ErrTimeout = errors.New("mamba3rt: timeout")

func closedError(op, what string) error {
	return &Error{Op: op, Status: StatusInvalidArgument, Message: what + " is closed", closed: true}
}

func invalidArgument(op, message string) error {
	return &Error{Op: op, Status: StatusInvalidArgument, Message: message}
}
