J @{t='begin';script='stats/1'}
$d=@(Get-MobileDevice -Mailbox ([string]$p.mailbox) -ErrorAction SilentlyContinue -ErrorVariable v|Where-Object{[string]$_.DeviceId -eq [string]$p.device_id})
if($v){J @{t='result';ok=$false;code=[string]$v[0].CategoryInfo.Category;error=[string]$v[0]}}
elseif(!$d.Count){J @{t='result';ok=$false;code='ObjectNotFound';error='The mailbox has no partnership with this device ID.'}}
else{$f=@{};foreach($q in (Get-MobileDeviceStatistics -Identity $d[0].Identity).PSObject.Properties){$x=$q.Value
if($x -is [datetime]){$x=D $x}elseif($x -is [Collections.IEnumerable] -and $x -isnot [string]){$x=@(foreach($y in $x){[string]$y}) -join ', '}
$f[[string]$q.Name]=[string]$x};J @{t='result';ok=$true;fields=$f}}
J @{t='end'}
