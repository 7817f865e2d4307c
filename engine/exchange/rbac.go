package exchange

import (
	"strings"
)

// rbacParents are the built-in management roles a custom role may derive
// from, in order of preference: the narrowest that hold the scripts'
// cmdlets first. The RBAC script finds which one holds each cmdlet on the
// server itself, so a build that moved a cmdlet still gets a role.
var rbacParents = []string{"Mail Recipients", "Organization Client Access", "View-Only Configuration", "Exchange Servers"}

// RBACScript returns PowerShell, to run once in the Exchange Management
// Shell as a member of Organization Management, that gives the service
// account exactly the Exchange cmdlets the scripts call: for each built-in
// role holding some of them, a child role (New-ManagementRole -Parent)
// with every other entry removed (Remove-ManagementRoleEntry), and a role
// group with those roles and the account as its member. Running it again
// changes nothing that is already right.
func RBACScript(member string) string {
	var b strings.Builder
	b.WriteString(`# easgate: a least-privilege Exchange management role for its service account.
# Run once in the Exchange Management Shell as a member of Organization Management.
# Each custom role below derives from a built-in role (New-ManagementRole -Parent) and keeps
# only the cmdlets easgate's scripts call (Remove-ManagementRoleEntry removes the rest); the
# role group easgate holds them, with the service account as its member.
$ErrorActionPreference = 'Stop'
$Member = ` + psQuote(member) + `
$Name = 'easgate'
$Cmdlets = @(
`)
	for i, c := range exchangeCmdlets {
		b.WriteString("    " + psQuote(c))
		if i < len(exchangeCmdlets)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(")\n# Built-in roles that may hold them, narrowest first.\n$Parents = @(")
	for i, p := range rbacParents {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(psQuote(p))
	}
	b.WriteString(`)

$plan = [ordered]@{}
foreach ($cmdlet in $Cmdlets) {
    $parent = $Parents | Where-Object { Get-ManagementRoleEntry -Identity "$_\$cmdlet" -ErrorAction SilentlyContinue } | Select-Object -First 1
    if (-not $parent) {
        $parent = Get-ManagementRole -Cmdlet $cmdlet | Where-Object { $_.IsRootRole -and -not $_.IsEndUserRole } | Select-Object -First 1 -ExpandProperty Name
    }
    if (-not $parent) { throw "No built-in management role holds $cmdlet." }
    if (-not $plan.Contains($parent)) { $plan[$parent] = @() }
    $plan[$parent] += $cmdlet
}

$roles = @()
foreach ($parent in $plan.Keys) {
    $role = "$Name - $parent"
    if (-not (Get-ManagementRole -Identity $role -ErrorAction SilentlyContinue)) {
        New-ManagementRole -Name $role -Parent $parent | Out-Null
    }
    $keep = $plan[$parent]
    Get-ManagementRoleEntry -Identity "$role\*" | Where-Object { $keep -notcontains $_.Name } | ForEach-Object {
        Remove-ManagementRoleEntry -Identity "$role\$($_.Name)" -Confirm:$false
    }
    $roles += $role
}

if (Get-RoleGroup -Identity $Name -ErrorAction SilentlyContinue) {
    $assigned = @(Get-ManagementRoleAssignment -RoleAssignee $Name | ForEach-Object { [string]$_.Role })
    foreach ($role in $roles | Where-Object { $assigned -notcontains $_ }) {
        New-ManagementRoleAssignment -SecurityGroup $Name -Role $role | Out-Null
    }
    Add-RoleGroupMember -Identity $Name -Member $Member -ErrorAction SilentlyContinue
} else {
    New-RoleGroup -Name $Name -Roles $roles -Members $Member -Description 'easgate service account: reads ActiveSync partnerships and changes allow and block lists' | Out-Null
}

Get-ManagementRoleEntry -Identity "$Name - *\*" | Sort-Object Role, Name | Format-Table Role, Name -AutoSize
`)
	return b.String()
}

// psQuote returns s as a single-quoted PowerShell string literal.
func psQuote(s string) string {
	// PowerShell also ends a single-quoted string at the typographic quotes.
	r := strings.NewReplacer("'", "''", "\u2018", "\u2018\u2018", "\u2019", "\u2019\u2019", "\u201a", "\u201a\u201a", "\u201b", "\u201b\u201b")
	return "'" + r.Replace(s) + "'"
}
