package billing

import (
	"errors"
	"strings"
	"testing"
)

func TestTextFieldCheck(t *testing.T) {
	id := TextField{Name: "id", Kind: Identifier, Max: 4, Required: true}
	line := TextField{Name: "line", Kind: Line, Max: 4}
	lines := TextField{Name: "lines", Kind: Lines, Max: 4}
	ascii := TextField{Name: "key", Kind: PrintableASCII, Max: 4, Required: true}
	tests := []struct {
		f    TextField
		v    string
		want string
	}{
		{id, "", TextRequired},
		{line, "", ""},
		{id, "ab-1", ""},
		{id, "车主甲乙", ""}, // four characters, twelve bytes
		{id, "车主甲乙丙", TextTooLong},
		{id, "abcde", TextTooLong},
		{id, strings.Repeat("\x00", 40), TextTooLong}, // too long wins
		{id, "a b", TextInvalidCharacter},
		{id, "a\u00a0b", TextInvalidCharacter}, // no-break space
		{line, "a b", ""},
		{line, "a\u00a0b", ""},
		{id, "a\x00", TextInvalidCharacter},
		{line, "a\x00", TextInvalidCharacter},
		{line, "a\tb", TextInvalidCharacter},
		{line, "a\nb", TextInvalidCharacter},
		{lines, "a\r\nb", ""},
		{lines, "a\tb", TextInvalidCharacter},
		{line, "a\x7f", TextInvalidCharacter},
		{line, "a\u0085", TextInvalidCharacter}, // C1 control
		{line, "a\u202e", TextInvalidCharacter}, // bidi override (Cf)
		{line, "a\u200b", TextInvalidCharacter}, // zero-width space (Cf)
		{line, "a\ufeff", TextInvalidCharacter}, // byte order mark (Cf)
		{line, "a\u2028", TextInvalidCharacter}, // line separator (Zl)
		{line, "a\ue000", TextInvalidCharacter}, // private use (Co)
		{line, "a\xff", TextInvalidCharacter},   // invalid UTF-8
		{line, "a\ufffd", ""},                   // the replacement character itself is visible
		{line, "🚗", ""},
		{ascii, "k-1 ", ""},
		{ascii, "k\x00", TextInvalidCharacter},
		{ascii, "ké", TextInvalidCharacter},
		{ascii, "k~~~~", TextTooLong},
	}
	for _, tc := range tests {
		if got := tc.f.Check(tc.v); got != tc.want {
			t.Errorf("%s.Check(%q) = %q, want %q", tc.f.Name, tc.v, got, tc.want)
		}
	}
}

func TestTextFieldErrorNamesTheField(t *testing.T) {
	err := NoteField.Error("a\x00")
	var e *Error
	if !errors.As(err, &e) || e.Code != EInvalid || len(e.Fields) != 1 || e.Fields[0] != (FieldError{"note", TextInvalidCharacter}) {
		t.Fatalf("NoteField.Error = %v, want validation_failed naming note invalid_character", err)
	}
	if err := NoteField.Error(strings.Repeat("备", MaxRefundNote)); err != nil {
		t.Errorf("a note of %d characters: %v", MaxRefundNote, err)
	}
}
