package intune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
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
// an ID or with a date that is not RFC 3339. The few-valued properties go
// through in, so that 100,000 devices share a handful of strings.
func (w *wireDevice) toMDM(in *interner) (engine.MDMDevice, error) {
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
	compliance := engine.Compliance(in.of(w.ComplianceState))
	if compliance == "" {
		compliance = engine.ComplianceUnknown
	}
	return engine.MDMDevice{
		ID:                  w.ID,
		UserID:              w.UserID,
		UserPrincipalName:   w.UserPrincipalName,
		Email:               w.EmailAddress,
		DeviceName:          w.DeviceName,
		OperatingSystem:     in.of(w.OperatingSystem),
		OSVersion:           in.of(w.OSVersion),
		Model:               in.of(w.Model),
		Manufacturer:        in.of(w.Manufacturer),
		EASDeviceID:         w.EASDeviceID,
		EASActivated:        w.EASActivated,
		Compliance:          compliance,
		ManagementAgent:     in.of(w.ManagementAgent),
		ExchangeAccessState: in.of(w.ExchangeAccessState),
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

// ManagedDevices reads Intune's managed devices.
//
// A zero q.Since reads all of them (a full read: only it shows deletions).
// Otherwise it reads only those that synced or enrolled after q.Since:
// Graph documents no "or" for this collection, so that is two filtered
// reads, run concurrently and merged by ID, and every device is checked
// against the window again here because Graph silently ignores a filter it
// does not support. The engine passes q.Since already widened by its quick
// overlap (Options.QuickOverlap: clock skew, and devices whose sync Graph
// records late); the adapter adds nothing but rounding down to the whole
// second Graph compares.
//
// A record that cannot be read is skipped and named in the inventory's
// Problems. A page that still fails after the request policy's retries
// ends that read: the devices of the pages before it are returned, and
// Problems says which page and why, so the inventory is incomplete rather
// than a shorter list that looks complete. A first page that fails, a
// request the no-token guard refused (ErrNoToken), or a cancelled ctx is
// an error.
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
	filters := []string{"lastSyncDateTime gt " + stamp, "enrolledDateTime gt " + stamp}
	reads := make([]*deviceRead, len(filters))
	errs := make([]error, len(filters))
	var wg sync.WaitGroup
	for i, f := range filters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reads[i], errs[i] = c.readDevices(ctx, f)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("list managed devices with $filter=%s: %w", filters[i], err)
		}
	}
	seen := map[string]int{}
	pages := 0
	for i, r := range reads {
		pages += r.pages
		inv.Problems = append(inv.Problems, r.problems...)
		ignored := 0
		for _, d := range r.devices {
			if !d.LastSync.After(since) && !d.Enrolled.After(since) {
				ignored++
				continue
			}
			if j, ok := seen[d.ID]; ok {
				inv.Devices[j] = d
				continue
			}
			seen[d.ID] = len(inv.Devices)
			inv.Devices = append(inv.Devices, d)
		}
		if ignored > 0 {
			c.log.Warn("graph returned devices outside its filter", logKeyFilter, filters[i], logKeyIgnored, ignored)
		}
	}
	c.log.Info("intune inventory read", logKeyQuick, true, logKeyDevices, len(inv.Devices),
		logKeyProblems, len(inv.Problems), logKeyPages, pages, logKeyDuration, time.Since(start))
	return inv, nil
}

// deviceRead is what one paged read of managedDevices returned. Pages are
// kept as they came and joined once at the end: appending 100,000 devices
// one by one would copy the growing slice over and over (measured: 150 MB
// allocated for 100,000 devices, against 26 MB joined).
type deviceRead struct {
	devices  []engine.MDMDevice // set by finish
	problems []string
	pages    int

	chunks [][]engine.MDMDevice
	index  map[string]devicePos
	n      int
}

type devicePos struct{ chunk, i int }

// add takes a page's devices (and their backing array). A device already
// read on an earlier page (it moved while Graph paged) is replaced there by
// this later copy.
func (r *deviceRead) add(page []engine.MDMDevice) {
	if r.index == nil {
		r.index = map[string]devicePos{}
	}
	cur := len(r.chunks)
	keep := page[:0]
	for _, d := range page {
		if pos, ok := r.index[d.ID]; ok {
			if pos.chunk == cur {
				keep[pos.i] = d
			} else {
				r.chunks[pos.chunk][pos.i] = d
			}
			continue
		}
		r.index[d.ID] = devicePos{cur, len(keep)}
		keep = append(keep, d)
	}
	if len(keep) > 0 {
		r.chunks = append(r.chunks, keep)
		r.n += len(keep)
	}
}

// finish joins the pages into devices.
func (r *deviceRead) finish() *deviceRead {
	r.devices = make([]engine.MDMDevice, 0, r.n)
	for _, c := range r.chunks {
		r.devices = append(r.devices, c...)
	}
	r.chunks, r.index = nil, nil
	return r
}

// readDevices pages through managedDevices with one filter ("" for none),
// following @odata.nextLink verbatim. A page after the first that fails
// ends the read with a problem; see ManagedDevices.
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
	pool := newInterner()
	prev := ""
	// incomplete ends the read after page-1 good pages.
	incomplete := func(page int, err error) (*deviceRead, error) {
		what := "managed devices"
		if filter != "" {
			what += " ($filter=" + filter + ")"
		}
		out.problems = append(out.problems, fmt.Sprintf("%s: page %d could not be read, so it and any pages after it are missing (%d devices read before it): %s",
			what, page, out.n, oneLine(err.Error(), 300)))
		c.log.Error("intune inventory incomplete", logKeyPage, page, logKeyFilter, filter, logKeyDevices, out.n, logKeyError, err)
		return out.finish(), nil
	}
	for page := 1; ; page++ {
		if page > maxPages {
			return incomplete(page, fmt.Errorf("%w: more than %d pages", ErrBadResponse, maxPages))
		}
		p := devicePage{intern: pool, devices: make([]engine.MDMDevice, 0, c.cfg.PageSize)}
		if err := c.send(ctx, ri, func(r io.Reader) error { return p.decode(r, page) }); err != nil {
			// The guard refusing a request is a configuration fault
			// (graph_url, or a nextLink to another host) to report
			// loudly, not a missing page.
			if page == 1 || ctx.Err() != nil || errors.Is(err, ErrNoToken) {
				return nil, fmt.Errorf("page %d: %w", page, err)
			}
			return incomplete(page, err)
		}
		out.pages++
		out.problems = append(out.problems, p.problems...)
		out.add(p.devices)
		if p.next == "" {
			return out.finish(), nil
		}
		if p.next == prev {
			return incomplete(page+1, fmt.Errorf("%w: page %d links to itself", ErrBadResponse, page))
		}
		prev = p.next
		ri, err = builder.WithUrl(p.next).ToGetRequestInformation(ctx, nil)
		if err != nil {
			return incomplete(page+1, fmt.Errorf("build request from @odata.nextLink: %w", err))
		}
	}
}

// devicePage is one decoded page of managed devices.
type devicePage struct {
	next     string
	devices  []engine.MDMDevice
	problems []string
	intern   *interner // nil: strings are not shared
}

// decode streams a collection page: {"@odata.nextLink": …, "value": […]}
// in any key order, starting from an empty page. A record of the wrong
// shape becomes a problem; a body that is not JSON is an error.
func (p *devicePage) decode(r io.Reader, page int) error {
	*p = devicePage{intern: p.intern, devices: p.devices[:0]}
	var w wireDevice // one for the page: decoding into it allocates it once
	return decodeCollection(r, &p.next, func(dec *json.Decoder, i int) error {
		w = wireDevice{}
		if err := dec.Decode(&w); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				p.problems = append(p.problems, fmt.Sprintf("managed device %d on page %d skipped: %s", i+1, page, oneLine(err.Error(), 200)))
				return nil
			}
			return err
		}
		d, err := w.toMDM(p.intern)
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
			return fmt.Errorf("%w: %w", ErrBadResponse, err)
		}
		key, _ := tok.(string)
		switch key {
		case "@odata.nextLink":
			if err := dec.Decode(next); err != nil {
				return fmt.Errorf("%w: @odata.nextLink: %w", ErrBadResponse, err)
			}
		case "value":
			sawValue = true
			if err := expectDelim(dec, '['); err != nil {
				return fmt.Errorf("value: %w", err)
			}
			for i := 0; dec.More(); i++ {
				if err := item(dec, i); err != nil {
					return fmt.Errorf("%w: value[%d]: %w", ErrBadResponse, i, err)
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrBadResponse, oneLine(key, 40), err)
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
		return fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: got %v, want %q", ErrBadResponse, tok, string(want))
	}
	return nil
}

// maxInterned bounds an interner: a tenant has a few dozen models and OS
// versions, not thousands; past the bound strings are kept as they are.
const maxInterned = 4096

// interner shares equal strings within one read. A nil interner returns
// its argument.
type interner struct {
	m map[string]string
}

func newInterner() *interner { return &interner{m: map[string]string{}} }

func (in *interner) of(s string) string {
	if in == nil || s == "" {
		return s
	}
	if v, ok := in.m[s]; ok {
		return v
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}
