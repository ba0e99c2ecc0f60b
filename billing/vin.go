package billing

import (
	"strings"
	"unicode/utf8"
)

// VIN is a validated, upper-case 17-character vehicle identification number.
type VIN string

var vinWeights = [17]int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}

// vinValue maps an allowed character to its transliterated value, or -1.
func vinValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'H':
		return int(c-'A') + 1
	case c >= 'J' && c <= 'N':
		return int(c-'J') + 1
	case c == 'P':
		return 7
	case c == 'R':
		return 9
	case c >= 'S' && c <= 'Z':
		return int(c-'S') + 2
	}
	return -1
}

// ParseVIN trims and upper-cases s and checks it as ISO 3779 / FMVSS 565:
// 17 characters from 0-9 A-H J-N P R-Z and a valid check digit at position
// 9. It returns an EInvalidVIN error that says which rule failed. Lengths
// and positions count characters, not bytes, and only ASCII letters are
// upper-cased: a non-ASCII character is a character error even where
// Unicode would upper-case it to an allowed letter ("ſ" to "S").
func ParseVIN(s string) (VIN, error) {
	t := strings.TrimSpace(s)
	if n := utf8.RuneCountInString(t); n != 17 {
		return "", Errorf(EInvalidVIN, "length: a VIN has 17 characters, got %d", n)
	}
	var v [17]byte
	sum, i := 0, 0
	for _, r := range t {
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		n := -1
		if r < utf8.RuneSelf {
			n = vinValue(byte(r))
		}
		if n < 0 {
			return "", Errorf(EInvalidVIN, "character: %q at position %d is not allowed (0-9, A-Z except I, O, Q)", r, i+1)
		}
		v[i] = byte(r)
		sum += n * vinWeights[i]
		i++
	}
	check := byte('0' + sum%11)
	if sum%11 == 10 {
		check = 'X'
	}
	if v[8] != check {
		return "", Errorf(EInvalidVIN, "check digit: position 9 is %q, want %q", v[8], check)
	}
	return VIN(v[:]), nil
}

// CheckDigit computes the check digit a 17-character VIN body should carry
// at position 9. It is meant for building valid VINs in tests and seeds;
// characters outside the alphabet count as 0.
func CheckDigit(v string) byte {
	sum := 0
	for i := 0; i < 17 && i < len(v); i++ {
		if n := vinValue(v[i]); n > 0 {
			sum += n * vinWeights[i]
		}
	}
	if sum%11 == 10 {
		return 'X'
	}
	return byte('0' + sum%11)
}

// FixCheckDigit returns v with position 9 set to its valid check digit.
func FixCheckDigit(v string) string {
	if len(v) != 17 {
		return v
	}
	b := []byte(v)
	b[8] = CheckDigit(v)
	return string(b)
}
