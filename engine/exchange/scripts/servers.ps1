J @{t='begin';script='servers/1'}
Get-ExchangeServer|Where-Object{$_.IsClientAccessServer -or [string]$_.ServerRole -match 'ClientAccess'}|ForEach-Object{P $_ 'Name','Fqdn','Site','ServerRole','AdminDisplayVersion' @{t='server'}}
J @{t='end'}
