package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"sota/errs"
)

// jsonBodyError turns what encoding/json says about a request body into the 400 invalid_entity a
// client can act on: the unknown field, or the field of the wrong type with the type it must have
// (in JSON's words, never Go's).
func jsonBodyError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return errs.InvalidEntity("The request body is empty; it must be a JSON value")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.InvalidEntity("Invalid JSON body: it ends before the JSON value does")
	case errors.As(err, &syn):
		return errs.InvalidEntity("Invalid JSON body: %s (at byte %d)", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	case errors.As(err, &typ):
		field, got := typ.Field, typ.Value
		if got == "bool" {
			got = "true or false"
		}
		if field == "" {
			return errs.InvalidEntity("The request body must be %s, not %s", jsonKind(typ.Type), got)
		}
		return errs.InvalidEntity("Field %q must be %s, not %s", field, jsonKind(typ.Type), got).With("field", field)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return errs.InvalidEntity("Unknown field %q in the request body", f).With("field", f)
	}
	return errs.InvalidEntity("Invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names the JSON a Go type accepts.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return fmt.Sprintf("a JSON %s", t.Kind())
}
