// Package errs holds the error kinds and stable error codes shared by the domain packages.
// The api package maps a Kind to an HTTP status in exactly one place; nothing else chooses a status.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error for transport mapping.
type Kind int

// Kinds of errors a client can cause or observe.
const (
	Internal        Kind = iota // a bug or an environment failure
	Invalid                     // malformed input (400)
	NotFound                    // a named entity does not exist (404)
	Unacceptable                // a filter expression fails validation (406)
	Conflict                    // duplicate or state conflict (409)
	Unauthorized                // not authenticated (401)
	Forbidden                   // authenticated but not allowed (403)
	TooLarge                    // request body over the limit (413)
	NotImplemented              // feature switched off (501)
	TooManyRequests             // a rate limit was hit (429); Details["retryAfter"] holds the seconds to wait
)

// Error is a domain error with a stable snake_case code and a human description.
// Details, when set, is encoded next to code and description (e.g. "errors", "missing").
type Error struct {
	Kind        Kind
	Code        string
	Description string
	Details     map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// New returns an *Error.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Description: fmt.Sprintf(format, args...)}
}

// With returns a copy of e carrying an extra detail field.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Details = map[string]any{}
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = value
	return &c
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Is reports whether err is an *Error with the given code.
func Is(err error, code string) bool {
	e, ok := As(err)
	return ok && e.Code == code
}

// InvalidEntity is the 400 every malformed input gets.
func InvalidEntity(format string, args ...any) *Error {
	return New(Invalid, "invalid_entity", format, args...)
}

// InvalidFilter is the 406 invalid_filter answer for a filter expression that fails validation. err
// is the filter language's error list: its Short form ("line:column: message; …") completes the
// description and the list itself becomes the "errors" detail ([{"line","column","message"}]).
func InvalidFilter(err error) *Error {
	desc := err.Error()
	if s, ok := err.(interface{ Short() string }); ok {
		desc = s.Short()
	}
	return New(Unacceptable, "invalid_filter", "Filter failed validation: %s", desc).With("errors", err)
}
