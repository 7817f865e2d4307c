J @{t='begin';script='orgdefault/1'}
Set-ActiveSyncOrganizationSettings -DefaultAccessLevel ([string]$p.level) -Confirm:$false
J @{t='result';ok=$true;level=[string](Get-ActiveSyncOrganizationSettings).DefaultAccessLevel}
J @{t='end'}
