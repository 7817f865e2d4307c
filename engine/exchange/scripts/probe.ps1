J @{t='begin';script='probe/1';server=$env:COMPUTERNAME}
$v=$null;try{$v=[string](Get-ExchangeServer -Identity $env:COMPUTERNAME).AdminDisplayVersion}catch{}
J @{t='probe';server=$env:COMPUTERNAME;ps=[string]$PSVersionTable.PSVersion;exchange=$v;cmdlets=(A (Get-Command -Name $p.import -ErrorAction SilentlyContinue|ForEach-Object{$_.Name}))}
J @{t='end'}
