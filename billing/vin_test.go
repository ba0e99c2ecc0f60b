package billing

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseVINValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want VIN
	}{
		{"check digit X", "1M8GDM9AXKP042788", "1M8GDM9AXKP042788"},
		{"all ones", "11111111111111111", "11111111111111111"},
		{"Honda Accord", "1HGCM82633A004352", "1HGCM82633A004352"},
		{"Acura Legend", "JH4KA7561PC008269", "JH4KA7561PC008269"},
		{"check digit 0", "3VWFE21C04M000001", "3VWFE21C04M000001"},
		{"letter S", "LSVAU218XN2183294", "LSVAU218XN2183294"},
		{"lower case", "1hgcm82633a004352", "1HGCM82633A004352"},
		{"mixed case with lower x check digit", "1m8gDM9axKP042788", "1M8GDM9AXKP042788"},
		{"space padded", "  1M8GDM9AXKP042788  ", "1M8GDM9AXKP042788"},
		{"tabs and newline", "\t1HGCM82633A004352\r\n", "1HGCM82633A004352"},
		{"ideographic space padded", "\u30001HGCM82633A004352\u3000", "1HGCM82633A004352"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVIN(tt.in)
			if err != nil {
				t.Fatalf("ParseVIN(%q) error = %v, want nil", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseVIN(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseVINInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		rule string // the message starts with it
		part string // and contains it
	}{
		{"empty", "", "length", "got 0"},
		{"only spaces", "    ", "length", "got 0"},
		{"too short", "1M8GDM9AXKP04278", "length", "got 16"},
		{"too long", "1M8GDM9AXKP0427881", "length", "got 18"},
		{"much too long", strings.Repeat("1", 100), "length", "got 100"},
		{"inner space makes it long", "1M8GDM9AX KP042788", "length", "got 18"},
		{"letter I", "IM8GDM9AXKP042788", "character", "position 1"},
		{"letter O", "1M8GDM9AXKP0427O8", "character", "position 16"},
		{"letter Q", "1M8GDM9AXKP04278Q", "character", "position 17"},
		{"lower case i", "1m8gdm9axkp0427i8", "character", "'I'"},
		{"lower case o", "1m8gdm9axkpo42788", "character", "position 12"},
		{"hyphen", "1M8GDM9AX-P042788", "character", "position 10"},
		{"dot", "1M8GDM9AXKP04278.", "character", "position 17"},
		{"inner space", "1M8GDM9AX P042788", "character", "position 10"},
		{"NUL byte", "1M8GDM9AXKP04278\x00", "character", "position 17"},
		{"umlaut, 17 characters", "1M8GDM9AXKP04278Ä", "character", "position 17"},
		{"umlaut, 17 bytes", "1M8GDM9AXKP0427Ä", "length", "got 16"},
		{"full-width digit", "１M8GDM9AXKP042788", "character", "position 1"},
		{"long s upper-cases to S", "LſVAU218XN2183294", "character", "position 2"},
		{"dotless i upper-cases to I", "1M8GDM9AXKP04278ı", "character", "position 17"},
		{"Kelvin sign", "1M8GDM9AXKP04278\u212a", "character", "position 17"},
		{"invalid UTF-8", "1M8GDM9AXKP04278\xff", "character", "position 17"},
		{"wrong check digit", "1M8GDM9A1KP042788", "check digit", "want 'X'"},
		{"X where a digit is due", "1HGCM826X3A004352", "check digit", "want '3'"},
		{"one character changed", "1HGCM82633A004353", "check digit", "position 9"},
		{"all zeros but one", "10000000000000000", "check digit", "want '8'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVIN(tt.in)
			if err == nil {
				t.Fatalf("ParseVIN(%q) = %q, want an error", tt.in, got)
			}
			if got != "" {
				t.Errorf("ParseVIN(%q) = %q with an error, want \"\"", tt.in, got)
			}
			if code := ErrorCode(err); code != EInvalidVIN {
				t.Errorf("ErrorCode(ParseVIN(%q)) = %q, want %q", tt.in, code, EInvalidVIN)
			}
			msg := ErrorMessage(err)
			if !strings.HasPrefix(msg, tt.rule+":") {
				t.Errorf("ParseVIN(%q) message = %q, want it to start with %q", tt.in, msg, tt.rule+":")
			}
			if !strings.Contains(msg, tt.part) {
				t.Errorf("ParseVIN(%q) message = %q, want it to contain %q", tt.in, msg, tt.part)
			}
		})
	}
}

func TestFixCheckDigit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"wrong digit replaced", "1M8GDM9A1KP042788", "1M8GDM9AXKP042788"},
		{"already valid", "1HGCM82633A004352", "1HGCM82633A004352"},
		{"placeholder", "LSVAU218?N2183294", "LSVAU218XN2183294"},
		{"wrong length kept", "1M8GDM9A1KP04278", "1M8GDM9A1KP04278"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FixCheckDigit(tt.in); got != tt.want {
				t.Errorf("FixCheckDigit(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseVIN(f *testing.F) {
	for _, s := range []string{
		"1M8GDM9AXKP042788", "11111111111111111", "1HGCM82633A004352",
		"1hgcm82633a004352", " 1M8GDM9AXKP042788 ", "", "IM8GDM9AXKP042788",
		"1M8GDM9A1KP042788", "1M8GDM9AXKP04278Ä", "LſVAU218XN2183294",
		"1M8GDM9AXKP04278\xff", strings.Repeat("Z", 17),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVIN(s)
		if err != nil {
			if v != "" {
				t.Errorf("ParseVIN(%q) = %q with error %v, want \"\"", s, v, err)
			}
			if !IsCode(err, EInvalidVIN) {
				t.Errorf("ParseVIN(%q) error code = %q, want %q", s, ErrorCode(err), EInvalidVIN)
			}
			msg := ErrorMessage(err)
			if !strings.HasPrefix(msg, "length:") && !strings.HasPrefix(msg, "character:") && !strings.HasPrefix(msg, "check digit:") {
				t.Errorf("ParseVIN(%q) message = %q, want it to name length, character or check digit", s, msg)
			}
			return
		}
		if len(v) != 17 || !utf8.ValidString(string(v)) {
			t.Fatalf("ParseVIN(%q) = %q, %d bytes, want 17 ASCII characters", s, v, len(v))
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; !strings.ContainsRune("0123456789ABCDEFGHJKLMNPRSTUVWXYZ", rune(c)) {
				t.Fatalf("ParseVIN(%q) = %q, character %q at %d is not allowed", s, v, c, i+1)
			}
		}
		if up := strings.ToUpper(string(v)); up != string(v) {
			t.Errorf("ParseVIN(%q) = %q, want upper case %q", s, v, up)
		}
		if tr := strings.TrimSpace(s); len(tr) != 17 || strings.ToUpper(tr) != string(v) {
			t.Errorf("ParseVIN(%q) = %q, want the trimmed input of 17 ASCII bytes, upper-cased", s, v)
		}
		if c := CheckDigit(string(v)); v[8] != c {
			t.Errorf("ParseVIN(%q) = %q, position 9 = %q, want %q", s, v, v[8], c)
		}
		again, err := ParseVIN(string(v))
		if err != nil || again != v {
			t.Errorf("ParseVIN(%q) = %q, %v; want %q, nil", v, again, err, v)
		}
	})
}
