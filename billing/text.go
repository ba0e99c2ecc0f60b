package billing

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// TextKind is the set of characters a text field may hold.
type TextKind int

const (
	// Identifier: graphic characters only (Unicode letters, marks,
	// numbers, punctuation and symbols): no spaces, no control, format,
	// private-use or unassigned code points. Owner ids, event and order
	// ids, transaction ids, record ids, product codes, currencies.
	Identifier TextKind = iota
	// Line: graphic characters and spaces (Unicode Zs), on one line.
	// Free text such as a car model, and token subjects.
	Line
	// Lines: Line plus line feeds and carriage returns. Refund notes.
	Lines
	// PrintableASCII: the characters from space to tilde. The
	// Idempotency-Key header.
	PrintableASCII
)

// TextField is the rule for one text field of a request: which characters
// it may hold, how many (Max, counted in Unicode code points as JSON
// Schema's maxLength counts them) and whether it may be empty. Every text
// that reaches the database is checked against one, so that nothing a
// database cannot store (PostgreSQL refuses NUL) nor anything invisible
// to the people who read it (control characters, bidirectional overrides,
// zero-width characters) is ever stored.
type TextField struct {
	Name     string
	Kind     TextKind
	Max      int
	Required bool
}

// The text fields of the API. docs/api.md and api/openapi.yaml state the
// same limits.
var (
	OwnerIDField        = TextField{Name: "owner_id", Kind: Identifier, Max: 128, Required: true}
	ModelField          = TextField{Name: "model", Kind: Line, Max: 100}
	EventIDField        = TextField{Name: "event_id", Kind: Identifier, Max: 128, Required: true}
	OrderIDField        = TextField{Name: "order_id", Kind: Identifier, Max: 128, Required: true}
	CurrencyField       = TextField{Name: "currency", Kind: Identifier, Max: 8, Required: true}
	TransactionIDField  = TextField{Name: "transaction_id", Kind: Identifier, Max: 128}
	NoteField           = TextField{Name: "note", Kind: Lines, Max: MaxRefundNote}
	ProductField        = TextField{Name: "product", Kind: Identifier, Max: 64, Required: true}
	IdempotencyKeyField = TextField{Name: "Idempotency-Key", Kind: PrintableASCII, Max: 255, Required: true}
	UsageRecordIDField  = TextField{Name: "id", Kind: Identifier, Max: MaxUsageRecordID, Required: true}
	// SubjectField is a bearer token's sub: an owner id, a VIN or a staff
	// member's name.
	SubjectField = TextField{Name: "sub", Kind: Line, Max: 128, Required: true}
	// PathIDField is an order id in a path (/v1/orders/{id}).
	PathIDField = TextField{Name: "id", Kind: Identifier, Max: 128, Required: true}
	// CursorIDField is the id inside a paging cursor.
	CursorIDField = TextField{Name: "cursor", Kind: Identifier, Max: 64, Required: true}
)

// Codes of a text field that does not follow its rule.
const (
	TextRequired         = "required"
	TextTooLong          = "too_long"
	TextInvalidCharacter = "invalid_character" // also invalid UTF-8
)

// Check returns what is wrong with v ("" when nothing is): TextRequired,
// TextTooLong or TextInvalidCharacter, in that order of precedence.
func (f TextField) Check(v string) string {
	if v == "" {
		if f.Required {
			return TextRequired
		}
		return ""
	}
	if len(v) > f.Max*utf8.UTFMax {
		return TextTooLong // more than Max code points whatever they are
	}
	n, bad := 0, false
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf { // ASCII, most of what arrives
			bad = bad || !asciiAllowed(f.Kind, c)
			i++
		} else {
			r, size := utf8.DecodeRuneInString(v[i:])
			bad = bad || !runeAllowed(f.Kind, r, size)
			i += size
		}
		n++
	}
	switch {
	case n > f.Max:
		return TextTooLong
	case bad:
		return TextInvalidCharacter
	}
	return ""
}

// Error is Check as a validation error naming the field, or nil.
func (f TextField) Error(v string) error {
	if code := f.Check(v); code != "" {
		return Invalid(f.Name+" is not valid: "+textProblem(code, f), FieldError{f.Name, code})
	}
	return nil
}

// AppendCheck appends the field's problem with v, if any, to fields.
func (f TextField) AppendCheck(fields []FieldError, v string) []FieldError {
	if code := f.Check(v); code != "" {
		return append(fields, FieldError{f.Name, code})
	}
	return fields
}

func textProblem(code string, f TextField) string {
	switch code {
	case TextRequired:
		return "it is required"
	case TextTooLong:
		return "it is longer than " + strconv.Itoa(f.Max) + " characters"
	}
	switch f.Kind {
	case Identifier:
		return "it must consist of visible characters without spaces"
	case PrintableASCII:
		return "it must consist of printable ASCII characters"
	}
	return "it must not contain control or invisible characters"
}

func asciiAllowed(k TextKind, c byte) bool {
	switch {
	case c > ' ' && c < 0x7f:
		return true
	case c == ' ':
		return k != Identifier
	case c == '\n' || c == '\r':
		return k == Lines
	}
	return false
}

func runeAllowed(k TextKind, r rune, size int) bool {
	switch {
	case k == PrintableASCII:
		return false
	case r == utf8.RuneError && size == 1: // invalid UTF-8
		return false
	case unicode.IsGraphic(r): // letters, marks, numbers, punctuation, symbols, Zs spaces
		return k != Identifier || !unicode.Is(unicode.Zs, r)
	}
	return false
}
