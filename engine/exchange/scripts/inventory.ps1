J @{t='begin';script='inventory/1'}
$o=Get-ActiveSyncOrganizationSettings
P $o 'DefaultAccessLevel','UserMailInsert' @{t='org';AdminMailRecipients=(A $o.AdminMailRecipients)}
Get-ActiveSyncDeviceAccessRule|ForEach-Object{P $_ 'Name','Characteristic','QueryString','AccessLevel' @{t='rule'}}
$f=$null
if($p.since){$f="FirstSyncTime -gt '"+([datetime]$p.since).AddDays(-1).ToString('MM/dd/yyyy HH:mm:ss',[cultureinfo]::InvariantCulture)+"'"}
$m=@{};$i=New-Object Collections.ArrayList;$n=0
$g=@{};if($f){$g.Filter=$f}
Get-MobileDevice -ResultSize Unlimited @g|ForEach-Object{
$d=[string]$_.DistinguishedName;$b=$d -replace '^(?:[^,\\]|\\.)*,CN=ExchangeActiveSyncDevices,'
if($b -eq $d){$b=''}else{$m[$b]=1};$n++;[void]$i.Add([string]$_.Identity)
P $_ 'Identity','DeviceId','DeviceType','DeviceModel','DeviceOS','DeviceUserAgent','ClientType','DeviceAccessState','DeviceAccessStateReason' @{t='device';mailbox_dn=$b;FirstSyncTime=(D $_.FirstSyncTime);WhenChangedUTC=(D $_.WhenChangedUTC)}}
$c=0
function M($l){if(!$l){return};$u=@{};$l|Get-Mailbox|ForEach-Object{$u[[string]$_.DistinguishedName]=[string]$_.UserPrincipalName}
foreach($x in $l){$d=[string]$x.DistinguishedName;$m.Remove($d);$script:c++
P $x 'DistinguishedName','PrimarySmtpAddress' @{t='mailbox';UserPrincipalName=$u[$d];EmailAddresses=(A ($x.EmailAddresses-like'smtp:*'));ActiveSyncAllowedDeviceIDs=(A $x.ActiveSyncAllowedDeviceIDs);ActiveSyncBlockedDeviceIDs=(A $x.ActiveSyncBlockedDeviceIDs)}}}
if(!$f){M @(Get-CASMailbox -ResultSize Unlimited -Filter "HasActiveSyncDevicePartnership -eq `$true -and -not DisplayName -like 'CAS_{*'")}
M @(@($m.Keys)|ForEach-Object{$d=$_;try{Get-CASMailbox -Identity $d}catch{J @{t='error';mailbox_dn=$d;message="$_"}}})
if($p.stats -and $i.Count){
$i|Get-MobileDeviceStatistics -ErrorAction SilentlyContinue -ErrorVariable e|ForEach-Object{P $_ 'Identity' @{t='stat';LastSuccessSync=(D $_.LastSuccessSync)}}
foreach($x in $e){J @{t='warning';message=[string]$x}}}
J @{t='end';devices=$n;mailboxes=$c}
