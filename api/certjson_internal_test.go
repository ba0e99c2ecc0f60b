package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"entitlements/api/certverify"
)

// TestAppendClaimsIsJSONMarshal: appendClaims writes what json.Marshal
// writes for the sample claims, for nil and empty lists, for strings that
// need escaping, and with each field of the claims set on its own (found
// by reflection, so a claim added to certverify.Claims and not to
// appendClaims fails here).
func TestAppendClaimsIsJSONMarshal(t *testing.T) {
	check := func(name string, c certverify.Claims) {
		t.Helper()
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendClaims(nil, &c); string(got) != string(want) {
			t.Errorf("%s:\nappendClaims %s\njson.Marshal %s", name, got, want)
		}
	}
	check("sample", sampleClaims())
	check("zero", certverify.Claims{})
	empty := sampleClaims()
	empty.Features.Basic, empty.Coverage, empty.Data.AsOf = []string{}, []certverify.WindowClaims{}, nil
	check("empty lists, no as_of", empty)
	many := sampleClaims()
	many.Coverage = append(many.Coverage, certverify.WindowClaims{From: "2027-02-15T00:00:00+08:00", To: "2027-03-18T00:00:00+08:00"})
	many.Epoch, many.Data.UsedBytes, many.Data.Unlimited, many.Data.Throttled = 7, -1, true, true
	check("two windows, negative and true", many)
	for _, s := range []string{"a<b>&c", `quote " and \ back`, "tab\t", "é", "\u2028", "\xff", "\x00", "~ !#$%'()*+,-./:;=?@[]^_`{|}"} {
		c := sampleClaims()
		c.Issuer, c.Features.Premium[0] = s, s
		check("string "+strconvQuote(s), c)
	}

	// Each leaf field set on its own, in claims otherwise zero (lists of
	// two, the first element holding the field).
	for n := 0; ; n++ {
		var c certverify.Claims
		skip := n
		path, ok := setLeaf(t, reflect.ValueOf(&c).Elem(), "Claims", &skip)
		if !ok {
			if n < 19 { // the claims of a certificate, lists and pointers counted once
				t.Fatalf("only %d fields found", n)
			}
			break
		}
		check(path, c)
	}
}

// setLeaf sets the *n-th leaf field under v (counting down n) to a
// distinctive value, making the pointers and slices on the way, and
// returns its path; false if v has fewer leaves.
func setLeaf(t *testing.T, v reflect.Value, path string, n *int) (string, bool) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if p, ok := setLeaf(t, v.Field(i), path+"."+v.Type().Field(i).Name, n); ok {
				return p, true
			}
		}
		return "", false
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		p, ok := setLeaf(t, e.Elem(), path+"*", n)
		if ok {
			v.Set(e)
		}
		return p, ok
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		p, ok := setLeaf(t, s.Index(0), path+"[0]", n)
		if ok {
			v.Set(s)
		}
		return p, ok
	}
	if *n > 0 {
		*n--
		return "", false
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x<y")
	case reflect.Int64, reflect.Int:
		v.SetInt(-42)
	case reflect.Bool:
		v.SetBool(true)
	default:
		t.Fatalf("%s: a %s claim; appendClaims and this test know strings, int64, bool, pointers, slices and structs", path, v.Kind())
	}
	return path, true
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// BenchmarkAppendClaims against json.Marshal, the sample claims.
func BenchmarkAppendClaims(b *testing.B) {
	c := sampleClaims()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			buf = appendClaims(buf[:0], &c)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
