}finally{if($r){Remove-PSSession $r}}
