J @{t='begin';script='apply/1'}
$n=0
foreach($e in $p.edits){$n++;$a=@{Identity=[string]$e.mailbox;Confirm=$false}
$h=@{};if($e.allow_add){$h['Add']=(A $e.allow_add)};if($e.allow_remove){$h['Remove']=(A $e.allow_remove)};if($h.Count){$a['ActiveSyncAllowedDeviceIDs']=$h}
$h=@{};if($e.block_add){$h['Add']=(A $e.block_add)};if($e.block_remove){$h['Remove']=(A $e.block_remove)};if($h.Count){$a['ActiveSyncBlockedDeviceIDs']=$h}
try{Set-CASMailbox @a;J @{t='result';id=[string]$e.id;ok=$true}}catch{J @{t='result';id=[string]$e.id;ok=$false;error=$_.Exception.Message}}}
J @{t='end';edits=$n}
