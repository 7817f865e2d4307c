J @{t='begin';script='wipe/1'}
$d=@(Get-MobileDevice -Mailbox ([string]$p.mailbox) -ErrorAction SilentlyContinue -ErrorVariable v|Where-Object{[string]$_.DeviceId -eq [string]$p.device_id})
$a=@{Confirm=$false};if($p.account_only){$a['AccountOnly']=$true}
if($v){J @{t='result';ok=$false;code=[string]$v[0].CategoryInfo.Category;error=[string]$v[0]}}
elseif(!$d.Count){J @{t='result';ok=$false;code='ObjectNotFound';error='The mailbox has no partnership with this device ID.'}}
else{try{foreach($x in $d){Clear-MobileDevice -Identity $x.Identity @a};J @{t='result';ok=$true;count=$d.Count}}
catch{J @{t='result';ok=$false;code=[string]$_.CategoryInfo.Category;error=$_.Exception.Message}}}
J @{t='end'}
