package intune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/devicemanagement"

	"easgate/engine"
)

// deviceSelect is exactly what engine.MDMDevice needs.
var deviceSelect = []string{
	"id", "userId", "userPrincipalName", "emailAddress", "deviceName", "operatingSystem", "osVersion",
	"model", "manufacturer", "easDeviceId", "easActivated", "complianceState", "managementAgent",
	"exchangeAccessState", "enrolledDateTime", "lastSyncDateTime",
}

// maxPages bounds a paged read: 100,000 pages is 100 million devices at
// the largest page size, far beyond any tenant, and stops a server that
// never stops handing out nextLinks.
const maxPages = 100_000

// wireDevice is a managedDevice as Graph sends it. Enums and dates stay
// strings so that a value this version does not know passes through.
type wireDevice struct {
	ID                  string `json:"id"`
	UserID              string `json:"userId"`
	UserPrincipalName   string `json:"userPrincipalName"`
	EmailAddress        string `json:"emailAddress"`
	DeviceName          string `json:"deviceName"`
	OperatingSystem     string `json:"operatingSystem"`
	OSVersion           string `json:"osVersion"`
	Model               string `json:"model"`
	Manufacturer        string `json:"manufacturer"`
	EASDeviceID         string `json:"easDeviceId"`
	EASActivated        bool   `json:"easActivated"`
	ComplianceState     string `json:"complianceState"`
	ManagementAgent     string `json:"managementAgent"`
	ExchangeAccessState string `json:"exchangeAccessState"`
	EnrolledDateTime    string `json:"enrolledDateTime"`
	LastSyncDateTime    string `json:"lastSyncDateTime"`
}

// toMDM maps a wire record to the domain type; it refuses a record without
// an ID or with a date that is not RFC 3339.
func (w *wireDevice) toMDM() (engine.MDMDevice, error) {
	if w.ID == "" {
		return engine.MDMDevice{}, errors.New("no id")
	}
	enrolled, err := graphTime(w.EnrolledDateTime)
	if err != nil {
		return engine.MDMDevice{}, fmt.Errorf("enrolledDateTime: %w", err)
	}
	last, err := graphTime(w.LastSyncDateTime)
	if err != nil {
		return engine.MDMDevice{}, fmt.Errorf("lastSyncDateTime: %w", err)
	}
	compliance := engine.Compliance(w.ComplianceState)
	if compliance == "" {
		compliance = engine.ComplianceUnknown
	}
	return engine.MDMDevice{
		ID:                  w.ID,
		UserID:              w.UserID,
		UserPrincipalName:   w.UserPrincipalName,
		Email:               w.EmailAddress,
		DeviceName:          w.DeviceName,
		OperatingSystem:     w.OperatingSystem,
		OSVersion:           w.OSVersion,
		Model:               w.Model,
		Manufacturer:        w.Manufacturer,
		EASDeviceID:         w.EASDeviceID,
		EASActivated:        w.EASActivated,
		Compliance:          compliance,
		ManagementAgent:     w.ManagementAgent,
		ExchangeAccessState: w.ExchangeAccessState,
		Enrolled:            enrolled,
		LastSync:            last,
	}, nil
}

// graphTime parses a Graph DateTimeOffset. Empty (null) and Graph's
// "0001-01-01T00:00:00Z" are the zero time.
func graphTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 date", oneLine(s, 40))
	}
	return t.UTC(), nil
}

// ManagedDevices reads Intune's managed devices. A zero q.Since reads all
// of them; otherwise only those that synced or enrolled since then, which
// takes two filtered reads (Graph documents no "or" for this collection)
// merged by ID, and is checked again here because Graph silently ignores a
// filter it does not support. A record that cannot be read is skipped and
// named in the inventory's Problems; a page that cannot be read fails the
// whole call.
func (c *Client) ManagedDevices(ctx context.Context, q engine.MDMQuery) (*engine.MDMInventory, error) {
	start := time.Now()
	inv := &engine.MDMInventory{Quick: !q.Since.IsZero(), Since: q.Since}
	if q.Since.IsZero() {
		r, err := c.readDevices(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("list managed devices: %w", err)
		}
		inv.Devices, inv.Problems = r.devices, r.problems
		c.log.Info("intune inventory read", logKeyQuick, false, logKeyDevices, len(inv.Devices),
			logKeyProblems, len(inv.Problems), logKeyPages, r.pages, logKeyDuration, time.Since(start))
		return inv, nil
	}

	// Graph compares whole seconds; round down so nothing is missed.
	since := q.Since.UTC().Truncate(time.Second)
	stamp := since.Format(time.RFC3339)
	seen := map[string]int{}
	pages := 0
	for _, filter := range []string{"lastSyncDateTime gt " + stamp, "enrolledDateTime gt " + stamp} {
		r, err := c.readDevices(ctx, filter)
		if err != nil {
			return nil, fmt.Errorf("list managed devices with $filter=%s: %w", filter, err)
		}
		pages += r.pages
		inv.Problems = append(inv.Problems, r.problems...)
		ignored := 0
		for _, d := range r.devices {
			if !d.LastSync.After(since) && !d.Enrolled.After(since) {
				ignored++
				continue
			}
			if i, ok := seen[d.ID]; ok {
				inv.Devices[i] = d
				continue
			}
			seen[d.ID] = len(inv.Devices)
			inv.Devices = append(inv.Devices, d)
		}
		if ignored > 0 {
			c.log.Warn("graph returned devices outside its filter", logKeyFilter, filter, logKeyIgnored, ignored)
		}
	}
	c.log.Info("intune inventory read", logKeyQuick, true, logKeyDevices, len(inv.Devices),
		logKeyProblems, len(inv.Problems), logKeyPages, pages, logKeyDuration, time.Since(start))
	return inv, nil
}

type deviceRead struct {
	devices  []engine.MDMDevice
	problems []string
	pages    int
}

// readDevices pages through managedDevices with one filter ("" for none),
// following @odata.nextLink verbatim.
func (c *Client) readDevices(ctx context.Context, filter string) (*deviceRead, error) {
	top := int32(c.cfg.PageSize)
	qp := &devicemanagement.ManagedDevicesRequestBuilderGetQueryParameters{Select: deviceSelect, Top: &top}
	if filter != "" {
		qp.Filter = &filter
	}
	builder := c.graph.DeviceManagement().ManagedDevices()
	ri, err := builder.ToGetRequestInformation(ctx, &devicemanagement.ManagedDevicesRequestBuilderGetRequestConfiguration{QueryParameters: qp})
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	out := &deviceRead{}
	index := map[string]int{}
	prev := ""
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrBadResponse, maxPages)
		}
		var p devicePage
		if err := c.send(ctx, ri, func(r io.Reader) error { return p.decode(r, page) }); err != nil {
			return nil, fmt.Errorf("page %d: %w", page, err)
		}
		out.pages++
		out.problems = append(out.problems, p.problems...)
		for _, d := range p.devices {
			if i, ok := index[d.ID]; ok {
				out.devices[i] = d // moved between pages: keep the later copy
				continue
			}
			index[d.ID] = len(out.devices)
			out.devices = append(out.devices, d)
		}
		if p.next == "" {
			return out, nil
		}
		if p.next == prev {
			return nil, fmt.Errorf("%w: page %d links to itself", ErrBadResponse, page)
		}
		prev = p.next
		ri, err = builder.WithUrl(p.next).ToGetRequestInformation(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("build request for page %d: %w", page+1, err)
		}
	}
}

// devicePage is one decoded page of managed devices.
type devicePage struct {
	next     string
	devices  []engine.MDMDevice
	problems []string
}

// decode streams a collection page: {"@odata.nextLink": …, "value": […]}
// in any key order. A record of the wrong shape becomes a problem; a body
// that is not JSON is an error.
func (p *devicePage) decode(r io.Reader, page int) error {
	return decodeCollection(r, &p.next, func(dec *json.Decoder, i int) error {
		var w wireDevice
		if err := dec.Decode(&w); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				p.problems = append(p.problems, fmt.Sprintf("managed device %d on page %d skipped: %s", i+1, page, oneLine(err.Error(), 200)))
				return nil
			}
			return err
		}
		d, err := w.toMDM()
		if err != nil {
			id := ""
			if w.ID != "" {
				id = fmt.Sprintf(" %q", oneLine(w.ID, 64))
			}
			p.problems = append(p.problems, fmt.Sprintf("managed device%s (%d on page %d) skipped: %v", id, i+1, page, err))
			return nil
		}
		p.devices = append(p.devices, d)
		return nil
	})
}

// decodeCollection walks a Graph collection object, keeping
// @odata.nextLink and calling item for each element of "value".
func decodeCollection(r io.Reader, next *string, item func(dec *json.Decoder, i int) error) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	sawValue := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
		key, _ := tok.(string)
		switch key {
		case "@odata.nextLink":
			if err := dec.Decode(next); err != nil {
				return fmt.Errorf("%w: @odata.nextLink: %v", ErrBadResponse, err)
			}
		case "value":
			sawValue = true
			if err := expectDelim(dec, '['); err != nil {
				return fmt.Errorf("value: %w", err)
			}
			for i := 0; dec.More(); i++ {
				if err := item(dec, i); err != nil {
					return fmt.Errorf("%w: value[%d]: %v", ErrBadResponse, i, err)
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrBadResponse, oneLine(key, 40), err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if !sawValue {
		return fmt.Errorf("%w: no value array", ErrBadResponse)
	}
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: got %v, want %q", ErrBadResponse, tok, string(want))
	}
	return nil
}
