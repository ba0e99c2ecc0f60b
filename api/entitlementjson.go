package api

import (
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
)

// appendEntitlement appends the JSON of v, byte for byte what json.Marshal
// writes (TestAppendEntitlementIsJSONMarshal checks every field, so a
// field added to entitlementView and not here fails it), without
// reflection: the entitlement read is the car's most frequent large
// answer, and reflecting over its periods and features was the largest
// part of its cost after the snapshot read.
func appendEntitlement(b []byte, v *entitlementView) []byte {
	b = appendStringField(b, `{"vin":`, v.VIN)
	b = appendStringField(b, `,"owner_id":`, v.OwnerID)
	b = appendStringField(b, `,"model":`, v.Model)
	b = appendStringField(b, `,"activated_at":`, v.ActivatedAt)
	b = appendStringField(b, `,"state":`, string(v.State))
	b = strconv.AppendBool(append(b, `,"covered":`...), v.Covered)
	b = appendStringPtr(append(b, `,"covered_until":`...), v.CoveredUntil)
	b = strconv.AppendInt(append(b, `,"days_left":`...), int64(v.DaysLeft), 10)
	b = append(b, `,"periods":`...)
	if v.Periods == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range v.Periods {
			p := &v.Periods[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStringField(b, `{"id":`, p.ID)
			b = appendStringField(b, `,"source":`, string(p.Source))
			b = appendStringPtr(append(b, `,"order_id":`...), p.OrderID)
			b = appendStringField(b, `,"product":`, p.Product)
			b = appendStringField(b, `,"starts_at":`, p.StartsAt)
			b = appendStringField(b, `,"ends_at":`, p.EndsAt)
			b = appendStringField(b, `,"status":`, string(p.Status))
			b = appendStringPtr(append(b, `,"refunded_at":`...), p.RefundedAt)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	d := &v.Data
	b = appendStringField(b, `,"data":{"cycle_start":`, d.CycleStart)
	b = appendStringField(b, `,"cycle_end":`, d.CycleEnd)
	b = strconv.AppendInt(append(b, `,"allowance_bytes":`...), d.AllowanceBytes, 10)
	b = strconv.AppendBool(append(b, `,"unlimited":`...), d.Unlimited)
	b = strconv.AppendInt(append(b, `,"used_bytes":`...), d.UsedBytes, 10)
	b = strconv.AppendInt(append(b, `,"remaining_bytes":`...), d.RemainingBytes, 10)
	b = strconv.AppendBool(append(b, `,"throttled":`...), d.Throttled)
	b = appendStringPtr(append(b, `,"as_of":`...), d.AsOf)
	b = append(b, `},"features":`...)
	if v.Features == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range v.Features {
			f := &v.Features[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStringField(b, `{"code":`, f.Code)
			b = appendStringField(b, `,"tier":`, string(f.Tier))
			b = strconv.AppendBool(append(b, `,"allowed":`...), f.Allowed)
			b = strconv.AppendBool(append(b, `,"throttled":`...), f.Throttled)
			b = appendStringField(b, `,"reason":`, string(f.Reason))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendStringField(b, `,"evaluated_at":`, v.AsOf)
	b = strconv.AppendInt(append(b, `,"epoch":`...), v.Epoch, 10)
	if p := v.Point; p != nil {
		b = appendStringField(b, `,"point_in_time":{"at":`, p.At)
		b = appendStringField(b, `,"as_known_at":`, p.AsKnownAt)
		b = strconv.AppendBool(append(b, `,"future":`...), p.Future)
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeEntitlement answers v with status, as c.JSON would.
func writeEntitlement(c *gin.Context, status int, v entitlementView) {
	bp := jsonBuffers.Get().(*[]byte)
	b := appendEntitlement((*bp)[:0], &v)
	c.Data(status, "application/json; charset=utf-8", b)
	if cap(b) <= 64<<10 { // a car with years of packages does not keep a large buffer pooled
		*bp = b
		jsonBuffers.Put(bp)
	}
}
