package engine

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// World is everything observed about both sides, as one consistent view: a
// full inventory, or the last snapshot with a quick inventory merged in.
type World struct {
	Org       OrgSettings
	Rules     []DeviceAccessRule
	Mailboxes map[string]Mailbox // by lower-cased UPN
	EAS       map[DeviceKey]EASDevice
	// MDM holds the Intune records by device ID. The values point into
	// one slice, which the planner's indexes share: a large tenant's
	// records are held once, not once per map.
	MDM map[string]*MDMDevice
	// MDMDelta, in a quick sync, holds the IDs of the MDM records Intune
	// reported changed: the ones its commit saves. A full sync saves MDM
	// whole.
	MDMDelta []string
	Scope    *Scope // nil: every mailbox
	// Complete is false when either inventory or the scope could not be read
	// whole; nothing that blocks is planned then.
	ExchangeComplete bool
	IntuneComplete   bool
	Problems         []string
}

// PlanInput is everything the planner needs; BuildPlan is a pure function of it.
type PlanInput struct {
	Now    time.Time
	Serial uint64
	Kind   RunKind
	Policy Policy
	World  *World
	Links  map[DeviceKey]Link
	Owned  map[OwnedKey]OwnedEntry
	// Prev holds the previous device records, for notification history and
	// how long a decision has stood.
	Prev map[DeviceKey]DeviceRecord
	// PrevMDMCount is how many MDM records the last complete Intune
	// inventory held.
	PrevMDMCount int
	// Overrides are admins' allows and blocks by hand.
	Overrides map[DeviceKey]Override
	// Devices, when set, restricts the plan to these devices: an admin's
	// action reconciles one device, without orphan clean-up or the brake.
	Devices []DeviceKey
	// RecentRemovals counts partnerships removed per mailbox (lower-cased
	// UPN) in the last 30 days; Exchange allows MaxRemovalsPerMonth.
	RecentRemovals map[string]int
}

// MaxRemovalsPerMonth is how many partnerships Exchange lets one mailbox
// delete in a month; idle removal stays within it.
const MaxRemovalsPerMonth = 20

// PlanOutput is the plan and the device records it was computed with.
type PlanOutput struct {
	Plan    *Plan
	Records map[DeviceKey]DeviceRecord
	// NewLinks are suggestions the policy applies automatically
	// (auto_link_suggestions).
	NewLinks []Link
	// Disowned are ownership records whose list entry is gone from Exchange.
	Disowned []OwnedKey
	// Expired are overrides whose time is up.
	Expired []DeviceKey
	InScope int
}

// intuneWipeMin is how many MDM records the last snapshot must have held for
// an inventory of zero to be taken as a failure of Intune, not as the truth.
const intuneWipeMin = 10

// BuildPlan merges, decides and plans. It does nothing; its output is sorted
// and each change carries the reason for it.
func BuildPlan(in PlanInput) *PlanOutput {
	w := in.World
	p := &planner{in: in, w: w, out: &PlanOutput{Records: make(map[DeviceKey]DeviceRecord, len(w.EAS))}}
	p.index()
	var keys []DeviceKey
	if in.Devices != nil {
		for _, k := range in.Devices {
			if _, ok := w.EAS[k]; ok {
				keys = append(keys, k)
			}
		}
	} else {
		keys = make([]DeviceKey, 0, len(w.EAS))
		for k := range w.EAS {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for k, o := range in.Overrides {
		if !o.Active(in.Now) {
			p.out.Expired = append(p.out.Expired, k)
		}
	}
	slices.Sort(p.out.Expired)
	plan := &Plan{Serial: in.Serial, Kind: in.Kind, Computed: in.Now}
	for _, k := range keys {
		d := w.EAS[k]
		rec := p.record(k, &d)
		p.changes(plan, &rec)
		p.notify(plan, &rec)
		p.out.Records[k] = rec
	}
	if p.mailWithheld > 0 {
		plan.Notes = append(plan.Notes, fmt.Sprintf("%d enrollment notification(s) withheld because the Intune inventory is incomplete", p.mailWithheld))
	}
	if in.Devices == nil {
		p.orphans(plan)
		p.orgDefault(plan)
		p.idle(plan)
	}
	p.finish(plan)
	p.out.Plan = plan
	return p.out
}

type planner struct {
	in  PlanInput
	w   *World
	out *PlanOutput

	byEASID   map[string][]*MDMDevice // lower-cased EAS device ID
	byUser    map[string][]*MDMDevice // lower-cased UPN or mail
	linkedMDM map[string][]DeviceKey  // MDM ID → manual links to it
	include   map[string]bool         // nil: everyone
	exclude   map[string]bool
	usedMDM   map[string]bool // MDM records already merged or suggested
	// mailWithheld counts the enrollment mails not planned because the
	// Intune inventory is incomplete.
	mailWithheld int
}

func (p *planner) index() {
	p.byEASID = map[string][]*MDMDevice{}
	p.byUser = map[string][]*MDMDevice{}
	p.linkedMDM = map[string][]DeviceKey{}
	p.usedMDM = map[string]bool{}
	for _, mp := range p.w.MDM {
		if mp.EASDeviceID != "" {
			k := strings.ToLower(mp.EASDeviceID)
			p.byEASID[k] = append(p.byEASID[k], mp)
		}
		for _, a := range uniqueLower(mp.UserPrincipalName, mp.Email) {
			p.byUser[a] = append(p.byUser[a], mp)
		}
	}
	for k, l := range p.in.Links {
		p.linkedMDM[l.MDMID] = append(p.linkedMDM[l.MDMID], k)
	}
	for _, list := range p.byEASID {
		slices.SortFunc(list, func(a, b *MDMDevice) int {
			return cmp.Or(b.LastSync.Compare(a.LastSync), strings.Compare(a.ID, b.ID))
		})
	}
	for _, list := range p.byUser {
		slices.SortFunc(list, func(a, b *MDMDevice) int { return strings.Compare(a.ID, b.ID) })
	}
	if s := p.w.Scope; s != nil {
		if !s.All {
			p.include = addressSet(s.Include)
		}
		p.exclude = addressSet(s.Exclude)
	}
}

func addressSet(users []DirectoryUser) map[string]bool {
	set := map[string]bool{}
	for _, u := range users {
		for _, a := range u.Addresses() {
			set[a] = true
		}
	}
	return set
}

// Addresses returns the user's UPN, mail and SMTP proxy addresses,
// lower-cased, without the "smtp:" prefix.
func (u DirectoryUser) Addresses() []string {
	out := uniqueLower(u.UserPrincipalName, u.Mail)
	for _, pa := range u.ProxyAddresses {
		if len(pa) > 5 && strings.EqualFold(pa[:5], "smtp:") {
			out = append(out, strings.ToLower(pa[5:]))
		}
	}
	return out
}

// AllAddresses returns the mailbox's UPN, primary SMTP address and proxy
// addresses, lower-cased.
func (m *Mailbox) AllAddresses() []string {
	out := uniqueLower(m.UPN, m.PrimarySMTP)
	for _, a := range m.Addresses {
		out = append(out, strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(a, "SMTP:"), "smtp:")))
	}
	return out
}

func uniqueLower(ss ...string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		s = strings.ToLower(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (p *planner) mailbox(d *EASDevice) *Mailbox {
	if mb, ok := p.w.Mailboxes[strings.ToLower(d.Mailbox)]; ok {
		return &mb
	}
	return &Mailbox{UPN: d.Mailbox, PrimarySMTP: d.PrimarySMTP}
}

// scope says whether the mailbox is in the policy's scope, and why not.
func (p *planner) scope(mb *Mailbox) (bool, string) {
	addrs := mb.AllAddresses()
	for _, a := range addrs {
		if p.exclude[a] {
			return false, "mailbox " + mb.UPN + " is in an excluded group"
		}
	}
	if p.include == nil {
		return true, ""
	}
	for _, a := range addrs {
		if p.include[a] {
			return true, ""
		}
	}
	return false, "mailbox " + mb.UPN + " is not in any included group"
}

// record merges one EAS record, whose key is k, with its MDM record and
// decides its access.
func (p *planner) record(k DeviceKey, d *EASDevice) DeviceRecord {
	rec := DeviceRecord{EASDevice: *d}
	prev, hadPrev := p.in.Prev[k]
	if hadPrev {
		rec.Notify = prev.Notify
	}
	mb := p.mailbox(d)
	if rec.PrimarySMTP == "" {
		rec.PrimarySMTP = mb.PrimarySMTP
	}
	if !d.IsEAS() {
		rec.Decision = Decision{Access: AccessNone, Exempt: true, Code: ReasonNotEAS,
			Reason: fmt.Sprintf("%s client: Exchange's ActiveSync allow and block lists do not govern it", d.ClientType)}
		rec.Since = since(prev, hadPrev, rec.Decision, p.in.Now)
		rec.AccessState, rec.AccessReason = d.AccessState, d.AccessReason
		return rec
	}
	mdm := p.merge(&rec, mb)
	if mdm != nil {
		rec.Compliance = mdm.Compliance
	}
	rec.InScope, _ = p.scope(mb)
	rec.Decision = p.decide(&rec, mb, mdm)
	rec.Since = since(prev, hadPrev, rec.Decision, p.in.Now)
	return rec
}

func since(prev DeviceRecord, ok bool, d Decision, now time.Time) time.Time {
	if ok && prev.Decision.Access == d.Access && prev.Decision.Code == d.Code && !prev.Since.IsZero() {
		return prev.Since
	}
	return now
}

// merge finds the EAS record's MDM record: a manual link first, then the
// same EAS device ID; else it looks for a suggestion.
func (p *planner) merge(rec *DeviceRecord, mb *Mailbox) *MDMDevice {
	key := rec.Key()
	if l, ok := p.in.Links[key]; ok {
		if m, ok := p.w.MDM[l.MDMID]; ok {
			rec.MDMID, rec.Link = m.ID, LinkManual
			p.usedMDM[m.ID] = true
			return m
		}
	}
	for _, m := range p.byEASID[strings.ToLower(rec.DeviceID)] {
		if len(p.linkedMDM[m.ID]) > 0 {
			continue // an admin linked this MDM record to another partnership
		}
		rec.MDMID, rec.Link = m.ID, LinkEASID
		p.usedMDM[m.ID] = true
		return m
	}
	if s := p.suggest(rec, mb); s != nil {
		rec.Suggested = s.ID
		if p.in.Policy.AutoLinkSuggestions {
			p.out.NewLinks = append(p.out.NewLinks, Link{Device: key, MDMID: s.ID, Kind: LinkManual, Created: p.in.Now, By: "easgate (suggestion)"})
			rec.MDMID, rec.Link = s.ID, LinkManual
			p.usedMDM[s.ID] = true
			return s
		}
	}
	return nil
}

// suggest ranks the MDM records that may be this partnership's device though
// Intune never reported its EAS ID: same user, no EAS ID, compatible
// platform, enrolled after the partnership's first sync; nearest enrollment
// first.
func (p *planner) suggest(rec *DeviceRecord, mb *Mailbox) *MDMDevice {
	fam := easFamily(&rec.EASDevice)
	var best *MDMDevice
	seen := map[string]bool{}
	for _, a := range mb.AllAddresses() {
		for _, m := range p.byUser[a] {
			if seen[m.ID] || m.EASDeviceID != "" || p.usedMDM[m.ID] || len(p.linkedMDM[m.ID]) > 0 {
				continue
			}
			seen[m.ID] = true
			if fam == "" || mdmFamily(m) != fam || m.Enrolled.Before(rec.FirstSync) {
				continue
			}
			if best == nil || m.Enrolled.Before(best.Enrolled) {
				best = m
			}
		}
	}
	return best
}

func easFamily(d *EASDevice) string {
	s := strings.ToLower(d.DeviceOS + " " + d.DeviceType + " " + d.UserAgent)
	switch {
	case strings.Contains(s, "ios") || strings.Contains(s, "iphone") || strings.Contains(s, "ipad"):
		return "ios"
	case strings.Contains(s, "android") || strings.Contains(s, "samsung"):
		return "android"
	case strings.Contains(s, "windows"):
		return "windows"
	}
	return ""
}

func mdmFamily(m *MDMDevice) string {
	s := strings.ToLower(m.OperatingSystem)
	switch {
	case strings.HasPrefix(s, "ios") || strings.HasPrefix(s, "ipados"):
		return "ios"
	case strings.HasPrefix(s, "android"):
		return "android"
	case strings.HasPrefix(s, "windows"):
		return "windows"
	}
	return ""
}

// decide applies the policy to one merged record.
func (p *planner) decide(rec *DeviceRecord, mb *Mailbox, mdm *MDMDevice) Decision {
	pol := &p.in.Policy
	if o, ok := p.in.Overrides[rec.Key()]; ok && o.Active(p.in.Now) && (o.Access == AccessAllow || o.Access == AccessBlock) {
		until := "until cleared"
		if !o.Until.IsZero() {
			until = "until " + o.Until.UTC().Format(time.RFC3339)
		}
		why := fmt.Sprintf("%s by hand by %s, %s", verbPast(o.Access), o.By, until)
		if o.Note != "" {
			why += ": " + o.Note
		}
		return Decision{Access: o.Access, Code: ReasonAdminOverride, Reason: why}
	}
	if ok, why := p.scope(mb); !ok {
		return Decision{Access: AccessNone, Exempt: true, Code: ReasonOutOfScope, Reason: why + "; easgate leaves the device to Exchange"}
	}
	if list, ok := p.adminEntry(rec, mb); ok {
		return Decision{Access: AccessNone, Exempt: true, Code: ReasonAdminEntry,
			Reason: fmt.Sprintf("an admin put this device on the mailbox's %s list by hand; easgate leaves it alone", list)}
	}
	if rec.Link == LinkManual && mdm != nil && mdm.EASDeviceID != "" && !strings.EqualFold(mdm.EASDeviceID, rec.DeviceID) {
		return Decision{Access: AccessNone, Exempt: true, Code: ReasonLinkConflict,
			Reason: fmt.Sprintf("linked by hand to MDM record %s, which now reports EAS ID %s: check the link", mdm.ID, mdm.EASDeviceID)}
	}
	if rec.Link == LinkManual && len(p.linkedMDM[rec.MDMID]) > 1 {
		return Decision{Access: AccessNone, Exempt: true, Code: ReasonLinkConflict,
			Reason: fmt.Sprintf("MDM record %s is linked to %d partnerships: check the links", rec.MDMID, len(p.linkedMDM[rec.MDMID]))}
	}

	var d Decision
	switch {
	case mdm != nil && mdm.Compliance.Compliant():
		d = Decision{Access: AccessAllow, Code: ReasonCompliant,
			Reason: fmt.Sprintf("enrolled in Intune and %s (MDM record %s, %s)", mdm.Compliance, mdm.ID, linkWords(rec.Link))}
	case mdm != nil && pol.BlockNoncompliant:
		d = Decision{Access: AccessBlock, Code: ReasonNoncompliant,
			Reason: fmt.Sprintf("enrolled in Intune but not compliant (complianceState %s, MDM record %s)", orUnknown(string(mdm.Compliance)), mdm.ID)}
	case mdm != nil:
		d = Decision{Access: AccessAllow, Code: ReasonNoncompliant,
			Reason: fmt.Sprintf("enrolled in Intune, not compliant (complianceState %s), but block_noncompliant is off", orUnknown(string(mdm.Compliance)))}
	default:
		d = Decision{Access: pol.UnmanagedAccess, Code: ReasonUnmanaged,
			Reason: fmt.Sprintf("not enrolled in Intune (no MDM record with EAS ID %s)", rec.DeviceID)}
	}

	if e, ok := p.exception(&rec.EASDevice); ok {
		protected := pol.OverrideDefaultRule && d.Code == ReasonCompliant && e.Access != AccessAllow
		if !protected {
			d = Decision{Access: e.Access, Code: ReasonException,
				Reason: fmt.Sprintf("platform exception %s = %q gives %s (%s)", e.Characteristic, e.Value, e.Access, d.Reason)}
		}
	}

	if d.Access == AccessBlock && pol.GracePeriod > 0 && p.in.Now.Sub(rec.FirstSync) < pol.GracePeriod {
		until := rec.FirstSync.Add(pol.GracePeriod)
		d = Decision{Access: AccessNone, Code: ReasonGrace,
			Reason: fmt.Sprintf("would block (%s), but the partnership is new: first synced %s, block deferred until %s",
				d.Reason, rec.FirstSync.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))}
	}
	return d
}

func linkWords(k LinkKind) string {
	if k == LinkManual {
		return "linked by hand"
	}
	return "same EAS device ID"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func (p *planner) exception(d *EASDevice) (PlatformException, bool) {
	for _, e := range p.in.Policy.PlatformExceptions {
		if e.Characteristic.Of(d) == e.Value {
			return e, true
		}
	}
	return PlatformException{}, false
}

// adminEntry reports whether the device is on one of the mailbox's lists
// by an entry easgate does not own.
func (p *planner) adminEntry(rec *DeviceRecord, mb *Mailbox) (List, bool) {
	for _, l := range [...]List{ListAllowed, ListBlocked} {
		if containsFold(listOf(mb, l), rec.DeviceID) {
			if _, owned := p.in.Owned[OwnedKeyOf(mb.UPN, l, rec.DeviceID)]; !owned {
				return l, true
			}
		}
	}
	return "", false
}

func listOf(mb *Mailbox, l List) []string {
	if l == ListAllowed {
		return mb.Allowed
	}
	return mb.Blocked
}

// changes plans the list edits that make Exchange hold what the decision wants.
func (p *planner) changes(plan *Plan, rec *DeviceRecord) {
	if !rec.IsEAS() {
		return
	}
	mb := p.mailbox(&rec.EASDevice)
	want := map[List]bool{}
	switch rec.Decision.Access {
	case AccessAllow:
		want[ListAllowed] = !rec.Decision.Exempt
	case AccessBlock:
		want[ListBlocked] = !rec.Decision.Exempt
	case AccessNone, AccessQuarantine:
	}
	for _, l := range [...]List{ListAllowed, ListBlocked} {
		present := containsFold(listOf(mb, l), rec.DeviceID)
		okey := OwnedKeyOf(mb.UPN, l, rec.DeviceID)
		_, owned := p.in.Owned[okey]
		switch {
		case want[l] && !present:
			p.add(plan, Change{Mailbox: mb.UPN, DeviceID: rec.DeviceID, List: l, Op: OpAdd, Reason: verb(rec.Decision.Access) + ": " + rec.Decision.Reason})
		case !want[l] && present && owned && l == ListAllowed && rec.Decision.Access == AccessNone && p.in.Owned[okey].Grandfathered:
			// Grandfathered when the org default switched; kept while
			// easgate leaves the device alone.
		case !want[l] && present && owned:
			p.add(plan, Change{Mailbox: mb.UPN, DeviceID: rec.DeviceID, List: l, Op: OpRemove,
				Reason: fmt.Sprintf("easgate's %s entry is no longer wanted: %s", l, rec.Decision.Reason)})
		case owned && !present && !want[l]:
			p.out.Disowned = append(p.out.Disowned, okey)
		}
	}
}

func verbPast(a Access) string {
	if a == AccessAllow {
		return "allowed"
	}
	return "blocked"
}

func verb(a Access) string {
	switch a {
	case AccessAllow:
		return "allow"
	case AccessBlock:
		return "block"
	case AccessQuarantine:
		return "quarantine"
	case AccessNone:
	}
	return "leave to Exchange"
}

// add plans a change, or withholds it when it would block on the strength of
// an incomplete inventory.
func (p *planner) add(plan *Plan, c Change) {
	if c.Blocks() && !(p.w.ExchangeComplete && p.w.IntuneComplete) {
		plan.Withheld = append(plan.Withheld, c)
		return
	}
	plan.Changes = append(plan.Changes, c)
}

// orphans removes easgate's entries for partnerships that no longer exist.
// Only a full, complete Exchange inventory can show that a partnership is
// gone.
func (p *planner) orphans(plan *Plan) {
	if !p.w.ExchangeComplete {
		return
	}
	var keys []OwnedKey
	for k := range p.in.Owned {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e := p.in.Owned[k]
		if _, ok := p.w.EAS[KeyOf(e.Mailbox, e.DeviceID)]; ok {
			continue
		}
		mb, ok := p.w.Mailboxes[strings.ToLower(e.Mailbox)]
		if !ok || !containsFold(listOf(&mb, e.List), e.DeviceID) {
			p.out.Disowned = append(p.out.Disowned, k)
			continue
		}
		plan.Changes = append(plan.Changes, Change{Mailbox: mb.UPN, DeviceID: e.DeviceID, List: e.List, Op: OpRemove, Orphan: true,
			Reason: fmt.Sprintf("the partnership no longer exists; removing easgate's %s entry", e.List)})
	}
}

// notify plans the enrollment mail for an unmerged, in-scope device.
func (p *planner) notify(plan *Plan, rec *DeviceRecord) {
	pol := p.in.Policy.Notify
	if !pol.Enabled || !rec.IsEAS() || rec.Merged() || rec.Decision.Exempt {
		return
	}
	n := rec.Notify
	resend := false
	switch {
	case n.Count == 0:
	case n.Count <= pol.MaxResends && pol.ResendAfter > 0 && p.in.Now.Sub(n.LastSent) >= pol.ResendAfter:
		resend = true
	default:
		return
	}
	if !p.w.IntuneComplete {
		// The device may be enrolled on a page or in a group that could
		// not be read: telling its user otherwise would be wrong.
		p.mailWithheld++
		return
	}
	plan.Notifications = append(plan.Notifications, notificationFor(rec, resend))
}

// notificationFor is the enrollment mail about one device.
func notificationFor(rec *DeviceRecord, resend bool) Notification {
	to := rec.PrimarySMTP
	if to == "" {
		to = rec.Mailbox
	}
	return Notification{
		Device: rec.Key(), Mailbox: rec.Mailbox, To: to, DeviceID: rec.DeviceID,
		DeviceType: rec.DeviceType, DeviceModel: rec.DeviceModel, DeviceOS: rec.DeviceOS, UserAgent: rec.UserAgent,
		FirstSync: rec.FirstSync, Access: rec.Decision.Access, Reason: rec.Decision.Reason, Resend: resend,
	}
}

// finish predicts Exchange's access after the plan, counts, and sets the brake.
func (p *planner) finish(plan *Plan) {
	after := p.after(plan)
	org := p.w.Org
	if plan.OrgDefault != nil {
		org.DefaultAccessLevel = plan.OrgDefault.To
	}
	cnt := Counts{MDMDevices: len(p.w.MDM), ChangesPlanned: len(plan.Changes)}
	for k, rec := range p.out.Records {
		if !rec.IsEAS() {
			continue
		}
		mb := after[strings.ToLower(rec.Mailbox)]
		if mb == nil {
			mb = p.mailbox(&rec.EASDevice)
		}
		rec.AccessState, rec.AccessReason = ExchangeAccess(org, p.w.Rules, mb, &rec.EASDevice)
		p.out.Records[k] = rec
		countRecord(&cnt, &rec)
		if rec.InScope {
			p.out.InScope++
		}
	}
	p.brake(plan, cnt)
}

// after returns the mailboxes the plan's changes touch, as they will be.
func (p *planner) after(plan *Plan) map[string]*Mailbox {
	after := map[string]*Mailbox{}
	for _, c := range plan.Changes {
		k := strings.ToLower(c.Mailbox)
		mb, ok := after[k]
		if !ok {
			m := p.w.Mailboxes[k]
			m.Allowed = slices.Clone(m.Allowed)
			m.Blocked = slices.Clone(m.Blocked)
			mb = &m
			after[k] = mb
		}
		lp := &mb.Allowed
		if c.List == ListBlocked {
			lp = &mb.Blocked
		}
		if c.Op == OpAdd {
			if !containsFold(*lp, c.DeviceID) {
				*lp = append(*lp, c.DeviceID)
			}
		} else {
			*lp = slices.DeleteFunc(*lp, func(x string) bool { return strings.EqualFold(x, c.DeviceID) })
		}
	}
	return after
}

// brake counts and holds a plan that would block too much at once.
func (p *planner) brake(plan *Plan, cnt Counts) {
	plan.Counts = cnt
	newBlocks := plan.NewBlocks()
	limit := p.in.Policy.Safety.Limit(p.out.InScope)
	switch {
	case p.in.Devices != nil:
		// An admin's action on named devices is not braked.
	case len(p.w.MDM) == 0 && p.in.PrevMDMCount >= intuneWipeMin && newBlocks > 0:
		plan.Brake = &Brake{NewBlocks: newBlocks, Limit: limit,
			Reason: fmt.Sprintf("Intune returned no devices where the last inventory had %d", p.in.PrevMDMCount)}
	case newBlocks > limit:
		plan.Brake = &Brake{NewBlocks: newBlocks, Limit: limit,
			Reason: fmt.Sprintf("%d new blocks exceed the limit of %d (max of %d and %g%% of %d in-scope devices)",
				newBlocks, limit, p.in.Policy.Safety.MaxNewBlocks, p.in.Policy.Safety.MaxNewBlocksPercent, p.out.InScope)}
	}
}

// levelFor is the DefaultAccessLevel that enforces unmanaged_access.
func levelFor(a Access) string {
	switch a {
	case AccessBlock:
		return "Block"
	case AccessQuarantine:
		return "Quarantine"
	case AccessAllow, AccessNone:
	}
	return "Allow"
}

// orgDefault plans the switch of Exchange's DefaultAccessLevel to the level
// unmanaged_access asks for (manage_org_default), grandfathering first every
// partnership the switch would take mail from although easgate does not
// block it: an allow entry each, kept while easgate leaves the device alone.
func (p *planner) orgDefault(plan *Plan) {
	pol := &p.in.Policy
	cur := p.w.Org.DefaultAccessLevel
	target := levelFor(pol.UnmanagedAccess)
	if !pol.ManageOrgDefault || cur == "" || strings.EqualFold(cur, target) {
		return
	}
	if !p.w.ExchangeComplete || !p.w.IntuneComplete {
		plan.Notes = append(plan.Notes, fmt.Sprintf("DefaultAccessLevel stays %s: an inventory is incomplete, so not every partnership could be grandfathered", cur))
		return
	}
	if !strings.EqualFold(target, "Allow") {
		after := p.after(plan)
		keys := sortedKeys(p.out.Records)
		for _, k := range keys {
			rec := p.out.Records[k]
			if !rec.IsEAS() || rec.Decision.Access != AccessNone {
				continue
			}
			mb := after[strings.ToLower(rec.Mailbox)]
			if mb == nil {
				mb = p.mailbox(&rec.EASDevice)
			}
			if state, reason := ExchangeAccess(p.w.Org, p.w.Rules, mb, &rec.EASDevice); state != StateAllowed || reason != ExchangeReasonGlobal {
				continue // on a list or under a rule: the switch does not touch it
			}
			plan.Changes = append(plan.Changes, Change{Mailbox: mb.UPN, DeviceID: rec.DeviceID, List: ListAllowed, Op: OpAdd, Grandfather: true,
				Reason: fmt.Sprintf("grandfathered before DefaultAccessLevel switches from %s to %s: %s", cur, target, rec.Decision.Reason)})
		}
	}
	plan.OrgDefault = &OrgDefaultChange{From: cur, To: target,
		Reason: fmt.Sprintf("manage_org_default: unmanaged_access is %s, so new partnerships get %s until easgate decides", pol.UnmanagedAccess, target)}
}

// idle plans the removal of partnerships that have not synced for longer
// than remove_idle_after, within Exchange's monthly deletion limit per
// mailbox. Only a complete Exchange inventory shows how long one is idle.
func (p *planner) idle(plan *Plan) {
	after := p.in.Policy.RemoveIdleAfter
	if after <= 0 || !p.w.ExchangeComplete {
		return
	}
	cutoff := p.in.Now.Add(-after)
	used := map[string]int{}
	skipped := 0
	for _, k := range sortedKeys(p.out.Records) {
		rec := p.out.Records[k]
		if !rec.IsEAS() || !rec.InScope || rec.Decision.Exempt {
			continue
		}
		// A device without a last sync time (its statistics could not be
		// read) is never taken for idle: it may be in daily use.
		last := rec.LastSync
		if last.IsZero() || !last.Before(cutoff) {
			continue
		}
		mbk := strings.ToLower(rec.Mailbox)
		if p.in.RecentRemovals[mbk]+used[mbk] >= MaxRemovalsPerMonth {
			skipped++
			continue
		}
		used[mbk]++
		plan.Removals = append(plan.Removals, Removal{Mailbox: rec.Mailbox, DeviceID: rec.DeviceID, LastSync: last,
			Reason: fmt.Sprintf("idle since %s, longer than remove_idle_after (%s)", last.UTC().Format(time.RFC3339), after)})
	}
	if skipped > 0 {
		plan.Notes = append(plan.Notes, fmt.Sprintf("%d idle partnership(s) wait for next month: their mailboxes reached Exchange's %d removals a month", skipped, MaxRemovalsPerMonth))
	}
}

// countRecord adds one governed EAS record to the counts.
func countRecord(c *Counts, r *DeviceRecord) {
	c.EASDevices++
	if r.Merged() {
		c.Merged++
	} else {
		c.Unmerged++
	}
	if r.Decision.Exempt {
		c.Exempt++
	}
	switch r.AccessState {
	case StateAllowed:
		c.Allowed++
	case StateBlocked:
		c.Blocked++
	case StateQuarantined:
		c.Quarantined++
	}
}

// CountRecords counts a set of device records as a run summary does.
func CountRecords(records map[DeviceKey]DeviceRecord, mdm int) Counts {
	c := Counts{MDMDevices: mdm}
	for _, r := range records {
		if r.IsEAS() {
			countRecord(&c, &r)
		}
	}
	return c
}
