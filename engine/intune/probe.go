package intune

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/microsoftgraph/msgraph-sdk-go/devicemanagement"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"

	"easgate/engine"
)

// The application permissions (app roles) easgate needs in Microsoft Graph.
const (
	PermissionManagedDevices = "DeviceManagementManagedDevices.Read.All"
	PermissionGroupMembers   = "GroupMember.Read.All"
)

// permissions lists what easgate needs, and the broader roles that also
// satisfy each need.
var permissions = []struct {
	name      string
	satisfied []string
	why       string
}{
	{PermissionManagedDevices, []string{PermissionManagedDevices, "DeviceManagementManagedDevices.ReadWrite.All"},
		"read Intune's managed devices"},
	{PermissionGroupMembers, []string{PermissionGroupMembers, "Group.Read.All", "Directory.Read.All"},
		"resolve the policy's include and exclude groups"},
}

// TestReport is what a connectivity check found. It never holds the token
// or the secret.
type TestReport struct {
	GraphURL     string `json:"graph_url"`
	AuthorityURL string `json:"authority_url"`
	TenantID     string `json:"tenant_id"`
	ClientID     string `json:"client_id"`
	// Credential is "client secret" or "certificate".
	Credential   string        `json:"credential"`
	Certificate  *Certificate  `json:"certificate,omitempty"`
	TokenOK      bool          `json:"token_ok"`
	TokenExpires time.Time     `json:"token_expires"`
	TokenTime    time.Duration `json:"token_time"`
	// Roles are the application permissions the token carries, when it is
	// a JWT (Entra ID's are); nil when they cannot be read.
	Roles []string `json:"roles,omitempty"`
	// Permissions checks each permission easgate may need against Roles.
	Permissions []PermissionCheck `json:"permissions,omitempty"`
	// MissingRoles are the needed permissions the token lacks.
	MissingRoles []string      `json:"missing_roles,omitempty"`
	ReadOK       bool          `json:"read_ok"`
	ReadTime     time.Duration `json:"read_time"`
	// DevicesSeen is how many managed devices the one-item read returned.
	DevicesSeen int `json:"devices_seen"`
	// Groups are the policy groups probed, each with a one-member read.
	Groups []GroupCheck `json:"groups,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// PermissionCheck is one application permission and whether the token
// carries it (or a broader one).
type PermissionCheck struct {
	Permission string `json:"permission"`
	Granted    bool   `json:"granted"`
	// GrantedAs is the role that satisfies it, when not the permission
	// itself (e.g. Group.Read.All for GroupMember.Read.All).
	GrantedAs string `json:"granted_as,omitempty"`
	// Needed is false for the group permission when the policy names no
	// groups.
	Needed bool   `json:"needed"`
	Why    string `json:"why"`
}

// GroupCheck is the probe of one policy group.
type GroupCheck struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// MissingPermissionHelp says how an admin grants a missing permission.
func MissingPermissionHelp(permission string) string {
	return fmt.Sprintf("the application lacks the Microsoft Graph application permission %s: in Entra ID open App registrations → this app → API permissions → Add a permission → Microsoft Graph → Application permissions, add %s, then Grant admin consent",
		permission, permission)
}

// Test checks the configuration end to end: it gets a token from the
// authority, compares the token's roles with the permissions easgate
// needs (the group permission only when groups are given), reads one
// managed device and one member of each group. The report is filled as
// far as the check got; the error joins everything that failed: a missing
// permission wraps ErrForbidden, an unknown group engine.ErrGroupNotFound.
func (c *Client) Test(ctx context.Context, groupIDs ...string) (*TestReport, error) {
	rep := &TestReport{
		GraphURL:     c.cfg.graph.String(),
		AuthorityURL: c.cfg.authority,
		TenantID:     c.cfg.TenantID,
		ClientID:     c.cfg.ClientID,
		Credential:   "client secret",
	}
	if c.cert != nil {
		rep.Credential, rep.Certificate = "certificate", c.cert.describe()
	}
	fail := func(err error) (*TestReport, error) {
		rep.Error = err.Error()
		return rep, err
	}
	start := time.Now()
	tok, err := c.tokens.GetToken(ctx, c.tokenOpts)
	rep.TokenTime = time.Since(start)
	if err != nil {
		var afe *azidentity.AuthenticationFailedError
		if errors.As(err, &afe) {
			err = authErrorFrom(afe, c.cfg.authority)
		} else {
			err = fmt.Errorf("%w: %w", ErrAuthentication, err)
		}
		return fail(err)
	}
	rep.TokenOK = true
	rep.TokenExpires = tok.ExpiresOn.UTC()

	var errs []error
	if roles, ok := rolesOf(tok.Token); ok {
		rep.Roles = roles
		for i, p := range permissions {
			pc := PermissionCheck{Permission: p.name, Needed: i == 0 || len(groupIDs) > 0, Why: p.why}
			for _, r := range p.satisfied {
				if slices.Contains(roles, r) {
					pc.Granted = true
					if r != p.name {
						pc.GrantedAs = r
					}
					break
				}
			}
			if !pc.Granted && pc.Needed {
				rep.MissingRoles = append(rep.MissingRoles, p.name)
				errs = append(errs, fmt.Errorf("%w: %s", ErrForbidden, MissingPermissionHelp(p.name)))
			}
			rep.Permissions = append(rep.Permissions, pc)
		}
	}

	start = time.Now()
	top := int32(1)
	ri, err := c.graph.DeviceManagement().ManagedDevices().ToGetRequestInformation(ctx,
		&devicemanagement.ManagedDevicesRequestBuilderGetRequestConfiguration{
			QueryParameters: &devicemanagement.ManagedDevicesRequestBuilderGetQueryParameters{Select: []string{"id"}, Top: &top},
		})
	if err == nil {
		var p devicePage
		err = c.send(ctx, ri, func(r io.Reader) error { return p.decode(r, 1) })
		rep.DevicesSeen = len(p.devices)
	}
	rep.ReadTime = time.Since(start)
	if err != nil {
		if isStatus(err, http.StatusForbidden) && !slices.Contains(rep.MissingRoles, PermissionManagedDevices) {
			err = fmt.Errorf("%w (%s)", err, MissingPermissionHelp(PermissionManagedDevices))
		}
		errs = append(errs, fmt.Errorf("read one managed device: %w", err))
	} else {
		rep.ReadOK = true
	}

	for _, g := range groupIDs {
		gc := GroupCheck{ID: g}
		if err := c.probeGroup(ctx, g); err != nil {
			if isStatus(err, http.StatusForbidden) && !slices.Contains(rep.MissingRoles, PermissionGroupMembers) {
				err = fmt.Errorf("%w (%s)", err, MissingPermissionHelp(PermissionGroupMembers))
			}
			gc.Error = err.Error()
			errs = append(errs, err)
		} else {
			gc.OK = true
		}
		rep.Groups = append(rep.Groups, gc)
	}
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	return rep, nil
}

// probeGroup reads one transitive user member of a group.
func (c *Client) probeGroup(ctx context.Context, groupID string) error {
	if !isObjectID(groupID) {
		return fmt.Errorf("group %q: not an object ID: %w", oneLine(groupID, 64), engine.ErrGroupNotFound)
	}
	top := int32(1)
	ri, err := c.graph.Groups().ByGroupId(groupID).TransitiveMembers().GraphUser().ToGetRequestInformation(ctx,
		&groups.ItemTransitiveMembersGraphUserRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.ItemTransitiveMembersGraphUserRequestBuilderGetQueryParameters{Select: []string{"id"}, Top: &top},
		})
	if err != nil {
		return fmt.Errorf("group %s: build request: %w", groupID, err)
	}
	var next string
	err = c.send(ctx, ri, func(r io.Reader) error {
		return decodeCollection(r, &next, func(dec *json.Decoder, _ int) error {
			var skip json.RawMessage
			return dec.Decode(&skip)
		})
	})
	switch {
	case err == nil:
		return nil
	case isStatus(err, http.StatusNotFound):
		return fmt.Errorf("group %s: %w: %w", groupID, engine.ErrGroupNotFound, err)
	}
	return fmt.Errorf("group %s: %w", groupID, err)
}

func isStatus(err error, status int) bool {
	var ge *GraphError
	return errors.As(err, &ge) && ge.Status == status
}

// rolesOf reads the roles claim of a JWT access token without verifying
// it: the report only shows what the token says.
func rolesOf(token string) ([]string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil, false
	}
	return claims.Roles, true
}
