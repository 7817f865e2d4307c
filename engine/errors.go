package engine

import "errors"

// ErrStalePlan is returned when a plan is applied after the store's serial
// moved on from the one the plan was computed from.
var ErrStalePlan = errors.New("plan is stale: the store changed since it was computed")

// ErrStaleSerial is returned by Store.Commit when the stored serial is not
// the one the commit expects.
var ErrStaleSerial = errors.New("store serial moved on")

// ErrStoreInUse is returned when another process holds the store.
var ErrStoreInUse = errors.New("store in use by another process")

// ErrGroupNotFound is returned by IntuneReader.GroupMembers for a group ID
// that does not exist.
var ErrGroupNotFound = errors.New("group not found")

// ErrBraked is returned when the safety brake holds a plan.
var ErrBraked = errors.New("plan held by the safety brake")

// ErrNoHeldPlan is returned when approving a plan while none is held.
var ErrNoHeldPlan = errors.New("no plan is held")

// ErrNotFound is returned when a device, run or MDM record does not exist.
var ErrNotFound = errors.New("not found")

// ErrClosed is returned by calls on an engine that has stopped.
var ErrClosed = errors.New("engine stopped")

// ErrReadOnly is returned for an action the read-only console or API refuses.
var ErrReadOnly = errors.New("read-only: this action changes Exchange or the store")
