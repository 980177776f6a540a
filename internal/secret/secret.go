// Package secret holds values that must never be shown: API tokens,
// passwords, secret parameters. A [String] redacts itself wherever Go would
// print or encode it — fmt, JSON, slog — so a secret reaches a log line, an
// error, an API answer or a page only through an explicit [String.Reveal].
package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what a secret shows instead of its value.
const Redacted = "<redacted>"

// String is a secret text.
type String struct{ v string }

// New wraps a secret value.
func New(v string) String { return String{v: v} }

// Reveal returns the value. Call it only where the value must leave the
// process on purpose: handing a freshly created token to its owner,
// passing a secret parameter to a task.
func (s String) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.v == "" }

// String returns [Redacted].
func (s String) String() string { return Redacted }

// GoString returns [Redacted], for %#v.
func (s String) GoString() string { return Redacted }

// Format prints [Redacted] for every verb.
func (s String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalJSON encodes [Redacted].
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText encodes [Redacted].
func (s String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue logs [Redacted].
func (s String) LogValue() slog.Value { return slog.StringValue(Redacted) }
