package api

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"entitlements/billing"
)

// usageDecodeCases are bodies on which encoding/json and
// go-json-experiment/json are known to differ, or might: the fast path
// must either agree with decodeUsageStrict or refuse the body.
var usageDecodeCases = map[string]string{
	"ok":                   `{"records":[{"id":"r1","vin":"LSVAX4E10P2100007","category":"entertainment","bytes":5,"started_at":"2026-06-14T08:00:00Z","ended_at":"2026-06-14T09:00:00Z"}]}`,
	"empty records":        `{"records":[]}`,
	"null records":         `{"records":null}`,
	"no records":           `{}`,
	"null body":            `null`,
	"empty body":           ``,
	"null record":          `{"records":[null]}`,
	"null among records":   `{"records":[{"id":"a","bytes":1},null,{}]}`,
	"empty record":         `{"records":[{}]}`,
	"null fields":          `{"records":[{"id":null,"vin":null,"category":null,"bytes":null,"started_at":null,"ended_at":null}]}`,
	"whitespace":           " \n{\"records\" : [ {\"id\" : \"a\"} ] }\t ",
	"trailing data":        `{"records":[]} x`,
	"second value":         `{"records":[]}{}`,
	"unknown top field":    `{"records":[],"x":1}`,
	"unknown record field": `{"records":[{"id":"a","x":1},{"id":"b"}]}`,
	"case folded name":     `{"records":[{"ID":"a","Bytes":3}]}`,
	"case folded records":  `{"Records":[{"id":"a"}]}`,
	"duplicate name":       `{"records":[{"bytes":1,"bytes":2}]}`,
	"duplicate records":    `{"records":[{"id":"a"}],"records":[{"id":"b"}]}`,
	"exponent":             `{"records":[{"bytes":1e2}]}`,
	"fraction":             `{"records":[{"bytes":1.0}]}`,
	"minus zero":           `{"records":[{"bytes":-0}]}`,
	"negative":             `{"records":[{"bytes":-7}]}`,
	"int64 overflow":       `{"records":[{"bytes":9223372036854775808}]}`,
	"string bytes":         `{"records":[{"bytes":"5"}]}`,
	"number id":            `{"records":[{"id":5}]}`,
	"bool vin":             `{"records":[{"vin":true}]}`,
	"object category":      `{"records":[{"category":{}}]}`,
	"record not object":    `{"records":[1,"x",[]]}`,
	"records object":       `{"records":{}}`,
	"lone surrogate":       `{"records":[{"id":"\ud800"}]}`,
	"surrogate pair":       `{"records":[{"id":"\ud800\udc00"}]}`,
	"invalid utf8":         "{\"records\":[{\"id\":\"\xff\"}]}",
	"nul escape":           `{"records":[{"id":"a\u0000b"}]}`,
	"escaped name":         `{"records":[{"\u0069d":"a"}]}`,
	"truncated":            `{"records":[{"id":"a"`,
	"syntax error":         `{"records":[{"id":"a",}]}`,
	"bom":                  "\ufeff{\"records\":[]}",
}

func checkDecodeUsageAgrees(t *testing.T, body []byte) {
	t.Helper()
	want, wantBad, wantErr := decodeUsageStrict(body)
	got, gotBad, gotErr := decodeUsage(body)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || reflect.TypeOf(gotErr) != reflect.TypeOf(wantErr) {
		t.Fatalf("decodeUsage(%q) error = %v, want %v (decodeUsageStrict)", body, gotErr, wantErr)
	}
	if len(gotBad) != len(wantBad) || (len(wantBad) > 0 && !reflect.DeepEqual(gotBad, wantBad)) {
		t.Fatalf("decodeUsage(%q) malformed = %v, want %v (decodeUsageStrict)", body, gotBad, wantBad)
	}
	if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
		t.Fatalf("decodeUsage(%q) = %s, want %s (decodeUsageStrict)", body, showRecords(got), showRecords(want))
	}
}

func showRecords(rs []usageRecordRequest) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "{%q %q %q %s %q %q}", r.ID, r.VIN, r.Category, show(r.Bytes), r.StartedAt, r.EndedAt)
	}
	return b.String()
}

func show[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", fmt.Sprint(*p))
}

// TestDecodeUsageFastAgrees checks that the fast decoder of usage batches
// changes nothing: on every case decodeUsage gives what encoding/json
// alone (decodeUsageStrict) gives.
func TestDecodeUsageFastAgrees(t *testing.T) {
	for name, body := range usageDecodeCases {
		t.Run(name, func(t *testing.T) { checkDecodeUsageAgrees(t, []byte(body)) })
	}
}

func FuzzDecodeUsage(f *testing.F) {
	for _, body := range usageDecodeCases {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkDecodeUsageAgrees(t, body) })
}

// BenchmarkDecodeUsage decodes a 10 000-record batch with decodeUsage and
// with encoding/json alone.
func BenchmarkDecodeUsage(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"records":[`)
	for i := range 10000 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"id":"b1-%06d","vin":"LSVAX4E10P3%06d","category":"entertainment","bytes":1000,"started_at":"2026-03-06T16:00:00+08:00","ended_at":"2026-03-06T16:01:00+08:00"}`, i, i%1000)
	}
	body.WriteString(`]}`)
	raw := []byte(body.String())
	for name, decode := range map[string]func([]byte) ([]usageRecordRequest, map[int]billing.Rejection, error){
		"fast": decodeUsage, "encoding_json": decodeUsageStrict,
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if rs, _, err := decode(raw); err != nil || len(rs) != 10000 {
					b.Fatalf("decode = %d records, %v", len(rs), err)
				}
			}
		})
	}
}
