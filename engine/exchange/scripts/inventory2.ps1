J @{t='begin';script='inventory/2'}
$n=0;$c=0;$s=0
if($p.devices){$o=Get-ActiveSyncOrganizationSettings
P $o 'DefaultAccessLevel','UserMailInsert' @{t='org';AdminMailRecipients=(A $o.AdminMailRecipients)}
Get-ActiveSyncDeviceAccessRule|ForEach-Object{P $_ 'Name','Characteristic','QueryString','AccessLevel' @{t='rule'}}
Get-MobileDevice -ResultSize Unlimited|ForEach-Object{
$d=[string]$_.DistinguishedName;$b=$d -replace '^(?:[^,\\]|\\.)*,CN=ExchangeActiveSyncDevices,'
if($b -eq $d){$b=''};$n++
P $_ 'Identity','DeviceId','DeviceType','DeviceModel','DeviceOS','DeviceUserAgent','ClientType','DeviceAccessState','DeviceAccessStateReason' @{t='device';mailbox_dn=$b;FirstSyncTime=(D $_.FirstSyncTime);WhenChangedUTC=(D $_.WhenChangedUTC)}}
J @{t='devices';devices=$n}}
while($null -ne ($l=[Console]::In.ReadLine())){if(!$l){continue};$q=$l|ConvertFrom-Json
foreach($x in @($q.mailboxes)){if(!$x){continue};try{$m=Get-CASMailbox -Identity $x;$u=Get-Mailbox -Identity $x;$c++
P $m 'DistinguishedName','PrimarySmtpAddress' @{t='mailbox';UserPrincipalName=[string]$u.UserPrincipalName;EmailAddresses=(A ($m.EmailAddresses-like'smtp:*'));ActiveSyncAllowedDeviceIDs=(A $m.ActiveSyncAllowedDeviceIDs);ActiveSyncBlockedDeviceIDs=(A $m.ActiveSyncBlockedDeviceIDs)}}catch{J @{t='error';mailbox_dn=$x;message="$_"}}}
$i=@($q.stats|Where-Object{$_})
if($i.Count){$i|Get-MobileDeviceStatistics -ErrorAction SilentlyContinue -ErrorVariable e|ForEach-Object{$s++;P $_ 'Identity' @{t='stat';LastSuccessSync=(D $_.LastSuccessSync)}}
foreach($x in $e){J @{t='warning';message=[string]$x}}}
J @{t='done';id=$q.id}}
J @{t='end';devices=$n;mailboxes=$c;stats=$s}
