package exchange

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"easgate/engine"
)

// maxDeviceIDLength is the longest device ID Exchange stores.
const maxDeviceIDLength = 32

// applyPayload is the apply script's stdin.
type applyPayload struct {
	sessionPayload
	Edits []*applyEdit `json:"edits"`
}

// applyEdit is one Set-CASMailbox: additions to and removals from a
// mailbox's two lists, as @{Add=…;Remove=…}, never a whole list.
type applyEdit struct {
	ID          string   `json:"id"`
	Mailbox     string   `json:"mailbox"`
	AllowAdd    []string `json:"allow_add,omitempty"`
	AllowRemove []string `json:"allow_remove,omitempty"`
	BlockAdd    []string `json:"block_add,omitempty"`
	BlockRemove []string `json:"block_remove,omitempty"`

	changes []int // indexes of the changes the edit carries
}

// slot returns the list the edit puts a change in, and the list of the
// opposite operation on the same mailbox list.
func (e *applyEdit) slot(c engine.Change) (mine, opposite *[]string, ok bool) {
	switch c.List {
	case engine.ListAllowed:
		switch c.Op {
		case engine.OpAdd:
			return &e.AllowAdd, &e.AllowRemove, true
		case engine.OpRemove:
			return &e.AllowRemove, &e.AllowAdd, true
		}
	case engine.ListBlocked:
		switch c.Op {
		case engine.OpAdd:
			return &e.BlockAdd, &e.BlockRemove, true
		case engine.OpRemove:
			return &e.BlockRemove, &e.BlockAdd, true
		}
	}
	return nil, nil, false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// groupChanges turns changes into Set-CASMailbox edits, one per mailbox,
// except that a change undoing an earlier one of the same call goes into a
// later edit so the two apply in order. Changes Exchange would refuse
// outright get their result at once and are not sent.
func groupChanges(changes []engine.Change) ([]*applyEdit, []engine.ChangeResult) {
	results := make([]engine.ChangeResult, len(changes))
	var edits []*applyEdit
	last := map[string]*applyEdit{} // mailbox → its latest edit
	for i, c := range changes {
		results[i].Change = c
		mailbox := strings.TrimSpace(c.Mailbox)
		id := strings.TrimSpace(c.DeviceID)
		switch {
		case mailbox == "":
			results[i].Error = "the change names no mailbox"
			continue
		case id == "":
			results[i].Error = "the change names no device ID"
			continue
		case len(id) > maxDeviceIDLength:
			results[i].Error = fmt.Sprintf("device ID of %d characters: Exchange stores at most %d", len(id), maxDeviceIDLength)
			continue
		}
		key := strings.ToLower(mailbox)
		e := last[key]
		probe := &applyEdit{}
		if _, _, ok := probe.slot(c); !ok {
			results[i].Error = fmt.Sprintf("unknown change %s on list %s", c.Op, c.List)
			continue
		}
		if e != nil {
			if _, opposite, _ := e.slot(c); containsFold(*opposite, id) {
				e = nil // undoes a change of this edit: apply after it
			}
		}
		if e == nil {
			e = &applyEdit{ID: "e" + strconv.Itoa(len(edits)+1), Mailbox: mailbox}
			edits = append(edits, e)
			last[key] = e
		}
		mine, _, _ := e.slot(c)
		if !containsFold(*mine, id) {
			*mine = append(*mine, id)
		}
		e.changes = append(e.changes, i)
	}
	return edits, results
}

// ApplyChanges adds device IDs to and removes them from mailboxes' allow
// and block lists, in one PowerShell process: one Set-CASMailbox per
// mailbox, each reporting its own result. It returns one result per
// change, in the order given. A change that Exchange refused is not OK
// and not transient. When the run itself failed (the server could not be
// reached, the session not opened, the output cut short) the changes
// without a result are marked transient with the cause, and the error is
// returned as well: their state is unknown until the next inventory.
func (c *Client) ApplyChanges(ctx context.Context, changes []engine.Change) ([]engine.ChangeResult, error) {
	edits, results := groupChanges(changes)
	if len(edits) == 0 {
		return results, nil
	}
	byID := map[string]*applyEdit{}
	for _, e := range edits {
		byID[e.ID] = e
	}
	answered := map[string]bool{}
	var bad []string
	var parser lineParser
	payload := func(sp sessionPayload) any { return applyPayload{sessionPayload: sp, Edits: edits} }
	res, err := c.run(ctx, applyScript, payload, func(n int, line []byte) {
		perr := parser.parse(line, func(r *record) {
			if r.T != "result" {
				return
			}
			e := byID[string(r.ID)]
			if e == nil || answered[e.ID] {
				bad = append(bad, fmt.Sprintf("stdout line %d: a result for unknown edit %q", n, r.ID))
				return
			}
			answered[e.ID] = true
			for _, i := range e.changes {
				results[i].OK = bool(r.OK)
				if !r.OK {
					results[i].Error = string(r.Error)
					if results[i].Error == "" {
						results[i].Error = "Exchange refused the change without a reason"
					}
				}
			}
		})
		if perr != nil {
			bad = append(bad, fmt.Sprintf("stdout line %d is malformed: %v", n, perr))
		}
	})
	server := c.Server()
	if res != nil {
		server = res.server
	}
	if err == nil {
		err = scriptError(applyScript, res)
	}
	if err == nil && len(answered) < len(edits) {
		err = &connError{kind: ErrConnection, err: fmt.Errorf("%s on %s answered %d of %d mailbox edits", scriptApply, server, len(answered), len(edits))}
	}
	if err != nil {
		err = fmt.Errorf("apply changes: %w", err)
		transient := errors.Is(err, ErrConnection)
		for _, e := range edits {
			if answered[e.ID] {
				continue
			}
			for _, i := range e.changes {
				results[i].OK, results[i].Transient = false, transient
				results[i].Error = "no result from Exchange: " + err.Error()
			}
		}
	}
	for _, b := range bad {
		c.log.Warn("exchange apply output problem", "problem", b)
	}
	ok := 0
	for _, r := range results {
		if r.OK {
			ok++
		}
	}
	c.log.Info("exchange changes applied", logServer, server, "changes", len(changes), "edits", len(edits), "ok", ok, "failed", len(changes)-ok)
	return results, err
}
