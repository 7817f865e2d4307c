J @{t='begin';script='rule/1'}
$c=[string]$p.characteristic;$q=[string]$p.query;$l=[string]$p.level
$x=@(Get-ActiveSyncDeviceAccessRule|Where-Object{[string]$_.Characteristic -eq $c -and [string]$_.QueryString -eq $q})
if($p.op -eq 'remove'){foreach($y in $x){Remove-ActiveSyncDeviceAccessRule -Identity $y.Identity -Confirm:$false};J @{t='result';ok=$true;count=$x.Count}}
elseif($x.Count){Set-ActiveSyncDeviceAccessRule -Identity $x[0].Identity -AccessLevel $l -Confirm:$false;J @{t='result';ok=$true;count=1}}
else{New-ActiveSyncDeviceAccessRule -Characteristic $c -QueryString $q -AccessLevel $l -Confirm:$false|Out-Null;J @{t='result';ok=$true;count=1}}
J @{t='end'}
