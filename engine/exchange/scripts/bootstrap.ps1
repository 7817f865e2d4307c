$ErrorActionPreference='Stop';$ProgressPreference='SilentlyContinue'
$p=[Console]::In.ReadToEnd()|ConvertFrom-Json
function J($o){[Console]::Out.WriteLine([regex]::Replace((ConvertTo-Json $o -Compress -Depth 4),'[^ -~]',{'\u{0:x4}'-f[int][char]"$args"}))}
function D($v){if($v){([datetime]$v).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")}}
function A($v){,[string[]]@(foreach($x in $v){[string]$x})}
function P($x,$w,$o){foreach($k in $w){$o[$k]=[string]$x.$k};J $o}
try{if($p.session -eq 'remote'){
$k=New-Object Management.Automation.PSCredential($p.user,(ConvertTo-SecureString $p.password -AsPlainText -Force))
$r=New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $p.uri -Authentication Kerberos -Credential $k
Import-PSSession $r -CommandName $p.import -DisableNameChecking -AllowClobber|Out-Null
}else{Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn}
