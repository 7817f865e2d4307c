package intune

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/microsoftgraph/msgraph-sdk-go/devicemanagement"
)

// TestReport is what a connectivity check found. It never holds the token.
type TestReport struct {
	GraphURL     string        `json:"graph_url"`
	AuthorityURL string        `json:"authority_url"`
	TenantID     string        `json:"tenant_id"`
	ClientID     string        `json:"client_id"`
	TokenOK      bool          `json:"token_ok"`
	TokenExpires time.Time     `json:"token_expires"`
	TokenTime    time.Duration `json:"token_time"`
	// Roles are the application permissions the token carries, when it is
	// a JWT (Entra ID's are); nil when they cannot be read.
	Roles []string `json:"roles,omitempty"`
	// MissingRoles are permissions easgate needs that Roles lacks.
	MissingRoles []string      `json:"missing_roles,omitempty"`
	ReadOK       bool          `json:"read_ok"`
	ReadTime     time.Duration `json:"read_time"`
	// DevicesSeen is how many managed devices the one-item read returned.
	DevicesSeen int    `json:"devices_seen"`
	Error       string `json:"error,omitempty"`
}

// requiredRoles: for each need, the roles any one of which satisfies it.
var requiredRoles = [][]string{
	{"DeviceManagementManagedDevices.Read.All", "DeviceManagementManagedDevices.ReadWrite.All"},
	{"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"},
}

// Test checks the configuration end to end: it gets a token from the
// authority and reads one managed device. The report is filled as far as
// the check got; the error says where it stopped.
func (c *Client) Test(ctx context.Context) (*TestReport, error) {
	rep := &TestReport{
		GraphURL:     c.cfg.graph.String(),
		AuthorityURL: c.cfg.authority,
		TenantID:     c.cfg.TenantID,
		ClientID:     c.cfg.ClientID,
	}
	start := time.Now()
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	rep.TokenTime = time.Since(start)
	if err != nil {
		var afe *azidentity.AuthenticationFailedError
		if errors.As(err, &afe) {
			err = authErrorFrom(afe, c.cfg.authority)
		} else {
			err = fmt.Errorf("%w: %w", ErrAuthentication, err)
		}
		rep.Error = err.Error()
		return rep, err
	}
	rep.TokenOK = true
	rep.TokenExpires = tok.ExpiresOn.UTC()
	if roles, ok := rolesOf(tok.Token); ok {
		rep.Roles = roles
		for _, need := range requiredRoles {
			if !slices.ContainsFunc(need, func(r string) bool { return slices.Contains(roles, r) }) {
				rep.MissingRoles = append(rep.MissingRoles, need[0])
			}
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
		err = fmt.Errorf("read one managed device: %w", err)
		rep.Error = err.Error()
		return rep, err
	}
	rep.ReadOK = true
	return rep, nil
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
