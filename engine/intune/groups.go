package intune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/groups"

	"easgate/engine"
)

var userSelect = []string{"id", "userPrincipalName", "mail", "proxyAddresses"}

type wireUser struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	Mail              string   `json:"mail"`
	ProxyAddresses    []string `json:"proxyAddresses"`
}

// GroupMembers returns the users in the group and in every group nested in
// it (transitiveMembers/microsoft.graph.user), each once, with their UPN,
// mail and proxy addresses: the engine matches mailboxes to them by UPN,
// then primary SMTP, then any proxy address. A group that does not exist,
// or an ID that cannot be one, is an error wrapping engine.ErrGroupNotFound
// that names the group. Unlike a device, a member record or page that
// cannot be read fails the call: scope resolved from a partial list would
// exclude or include the wrong people.
func (c *Client) GroupMembers(ctx context.Context, groupID string) ([]engine.DirectoryUser, error) {
	if !isObjectID(groupID) {
		return nil, fmt.Errorf("list members of group %q: not an object ID: %w", oneLine(groupID, 64), engine.ErrGroupNotFound)
	}
	start := time.Now()
	top := int32(min(c.cfg.PageSize, maxDirectoryPage))
	builder := c.graph.Groups().ByGroupId(groupID).TransitiveMembers().GraphUser()
	ri, err := builder.ToGetRequestInformation(ctx, &groups.ItemTransitiveMembersGraphUserRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.ItemTransitiveMembersGraphUserRequestBuilderGetQueryParameters{Select: userSelect, Top: &top},
	})
	if err != nil {
		return nil, fmt.Errorf("list members of group %s: build request: %w", groupID, err)
	}
	var users []engine.DirectoryUser
	seen := map[string]bool{}
	prev := ""
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("list members of group %s: %w: more than %d pages", groupID, ErrBadResponse, maxPages)
		}
		var pageUsers []engine.DirectoryUser
		next := ""
		err := c.send(ctx, ri, func(r io.Reader) error {
			pageUsers, next = pageUsers[:0], ""
			return decodeCollection(r, &next, func(dec *json.Decoder, i int) error {
				var w wireUser
				if err := dec.Decode(&w); err != nil {
					return err
				}
				if w.ID == "" {
					return errors.New("member without id")
				}
				pageUsers = append(pageUsers, engine.DirectoryUser{ID: w.ID, UserPrincipalName: w.UserPrincipalName, Mail: w.Mail, ProxyAddresses: w.ProxyAddresses})
				return nil
			})
		})
		if err != nil {
			var ge *GraphError
			if errors.As(err, &ge) && ge.Status == http.StatusNotFound {
				return nil, fmt.Errorf("list members of group %s: %w: %w", groupID, engine.ErrGroupNotFound, err)
			}
			return nil, fmt.Errorf("list members of group %s: page %d: %w", groupID, page, err)
		}
		for _, u := range pageUsers {
			if !seen[u.ID] {
				seen[u.ID] = true
				users = append(users, u)
			}
		}
		if next == "" {
			break
		}
		if next == prev {
			return nil, fmt.Errorf("list members of group %s: %w: page %d links to itself", groupID, ErrBadResponse, page)
		}
		prev = next
		ri, err = builder.WithUrl(next).ToGetRequestInformation(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("list members of group %s: build request for page %d: %w", groupID, page+1, err)
		}
	}
	c.log.Info("group members read", logKeyGroup, groupID, logKeyUsers, len(users), logKeyDuration, time.Since(start))
	return users, nil
}

// isObjectID reports whether s has the shape of an Entra object ID (a GUID).
func isObjectID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
