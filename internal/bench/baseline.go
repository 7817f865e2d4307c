package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/masterzen/winrm"

	"easgate/engine/sim"
)

// The baseline's scripts: what an admin's per-mailbox script does, one
// powershell.exe per mailbox to read it and one per change to make it,
// each opening its own Exchange session. Data travels on stdin, as with
// easgate's scripts; the simulated host recognises them by their marker.
const (
	baselineHead = `$ErrorActionPreference='Stop';$ProgressPreference='SilentlyContinue'
$p=[Console]::In.ReadToEnd()|ConvertFrom-Json
function J($o){[Console]::Out.WriteLine((ConvertTo-Json $o -Compress -Depth 4))}
$k=New-Object Management.Automation.PSCredential($p.user,(ConvertTo-SecureString $p.password -AsPlainText -Force))
$r=New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $p.uri -Authentication Kerberos -Credential $k
Import-PSSession $r -CommandName $p.import -DisableNameChecking -AllowClobber|Out-Null
try{
`
	baselineTail = "\nJ @{t='end'}\n}finally{Remove-PSSession $r}\n"

	baselineListBody = "J @{t='begin';script='baseline-list/1'}\n" +
		"Get-CASMailbox -ResultSize Unlimited -Filter \"HasActiveSyncDevicePartnership -eq `$true\"|ForEach-Object{J @{t='mailbox';DistinguishedName=[string]$_.DistinguishedName;PrimarySmtpAddress=[string]$_.PrimarySmtpAddress}}"
	baselineMailboxBody = `J @{t='begin';script='baseline-mailbox/1'}
$c=Get-CASMailbox -Identity $p.mailbox;$u=Get-Mailbox -Identity $p.mailbox
J @{t='mailbox';DistinguishedName=[string]$c.DistinguishedName;PrimarySmtpAddress=[string]$c.PrimarySmtpAddress;UserPrincipalName=[string]$u.UserPrincipalName;ActiveSyncAllowedDeviceIDs=@($c.ActiveSyncAllowedDeviceIDs);ActiveSyncBlockedDeviceIDs=@($c.ActiveSyncBlockedDeviceIDs)}
$d=@(Get-MobileDevice -Mailbox $p.mailbox)
foreach($x in $d){J @{t='device';Identity=[string]$x.Identity;DeviceId=[string]$x.DeviceId;DeviceType=[string]$x.DeviceType;DeviceAccessState=[string]$x.DeviceAccessState}}
foreach($x in $d){$s=Get-MobileDeviceStatistics -Identity $x.Identity;J @{t='stat';Identity=[string]$x.Identity;LastSuccessSync=[string]$s.LastSuccessSync}}`
	baselineChangeBody = `J @{t='begin';script='baseline-change/1'}
foreach($e in $p.edits){$a=@{Identity=$e.mailbox}
if($e.allow_add -or $e.allow_remove){$a.ActiveSyncAllowedDeviceIDs=@{Add=@($e.allow_add);Remove=@($e.allow_remove)}}
if($e.block_add -or $e.block_remove){$a.ActiveSyncBlockedDeviceIDs=@{Add=@($e.block_add);Remove=@($e.block_remove)}}
Set-CASMailbox @a;J @{t='result';id=$e.id;ok=$true}}`
)

// baselineScript composes a baseline script with its marker line.
func baselineScript(name, body string) string {
	return "# easgate-script: " + name + "\n" + baselineHead + body + baselineTail
}

// baselineCmdlets are the Exchange cmdlets the baseline scripts import.
var baselineCmdlets = []string{"Get-CASMailbox", "Get-Mailbox", "Get-MobileDevice", "Get-MobileDeviceStatistics", "Set-CASMailbox"}

// BaselineResult is what the per-mailbox baseline took.
type BaselineResult struct {
	Mailboxes int           `json:"mailboxes"`
	Devices   int           `json:"devices"`
	Changes   int           `json:"changes"`
	Inventory time.Duration `json:"inventory"` // listing and reading every mailbox
	Apply     time.Duration `json:"apply"`     // every change in a process of its own
	Total     time.Duration `json:"total"`
	Starts    int64         `json:"starts"` // powershell.exe processes
}

// baseliner runs the baseline scripts over the real WinRM client.
type baseliner struct {
	client   *winrm.Client
	payload  map[string]any
	parallel int
}

func newBaseliner(info sim.Info, parallel int) (*baseliner, error) {
	u, err := url.Parse(info.WinRMURL)
	if err != nil {
		return nil, fmt.Errorf("winrm url: %w", err)
	}
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("winrm url: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("winrm url: %w", err)
	}
	ep := winrm.NewEndpoint(host, port, false, false, nil, nil, nil, 2*time.Minute)
	client, err := winrm.NewClientWithParameters(ep, info.WinRMUser, info.WinRMPassword, winrm.NewParameters("PT60S", "en-US", 153600))
	if err != nil {
		return nil, fmt.Errorf("winrm client: %w", err)
	}
	return &baseliner{client: client, parallel: max(parallel, 1), payload: map[string]any{
		"session": "remote", "uri": "http://" + host + "/PowerShell/", "user": info.WinRMUser, "password": info.WinRMPassword,
		"import": baselineCmdlets,
	}}, nil
}

// run runs one baseline script with the payload plus extra, and returns
// its stdout lines, decoded.
func (b *baseliner) run(name, body string, extra map[string]any) ([]map[string]any, error) {
	p := map[string]any{}
	for k, v := range b.payload {
		p[k] = v
	}
	for k, v := range extra {
		p[k] = v
	}
	stdin, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	code, err := b.client.RunWithInput(encodedCommand(baselineScript(name, body)), &stdout, &stderr, bytes.NewReader(stdin))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if code != 0 {
		return nil, fmt.Errorf("%s exited %d: %.300s", name, code, stderr.String())
	}
	var out []map[string]any
	for _, line := range strings.Split(stdout.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("%s output: %w", name, err)
		}
		out = append(out, m)
	}
	if len(out) == 0 || out[len(out)-1]["t"] != "end" {
		return nil, fmt.Errorf("%s output ends without its end line", name)
	}
	return out, nil
}

// each runs fn over items, b.parallel at a time, and returns the first error.
func (b *baseliner) each(ctx context.Context, n int, fn func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		errs error
	)
	for range b.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := errs != nil || i >= n || ctx.Err() != nil
				mu.Unlock()
				if stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if errs == nil {
						errs = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if errs == nil {
		errs = ctx.Err()
	}
	return errs
}

// inventory lists the mailboxes and reads each in a process of its own.
func (b *baseliner) inventory(ctx context.Context, res *BaselineResult) error {
	start := time.Now()
	lines, err := b.run("baseline-list/1", baselineListBody, nil)
	if err != nil {
		return err
	}
	var mailboxes []string
	for _, l := range lines {
		if l["t"] == "mailbox" {
			if a, _ := l["PrimarySmtpAddress"].(string); a != "" {
				mailboxes = append(mailboxes, a)
			}
		}
	}
	var mu sync.Mutex
	err = b.each(ctx, len(mailboxes), func(i int) error {
		lines, err := b.run("baseline-mailbox/1", baselineMailboxBody, map[string]any{"mailbox": mailboxes[i]})
		if err != nil {
			return err
		}
		devices := 0
		for _, l := range lines {
			if l["t"] == "device" {
				devices++
			}
		}
		mu.Lock()
		res.Devices += devices
		mu.Unlock()
		return nil
	})
	res.Mailboxes = len(mailboxes)
	res.Inventory = time.Since(start)
	return err
}

// apply makes every change in a process of its own.
func (b *baseliner) apply(ctx context.Context, changes []planChange, res *BaselineResult) error {
	start := time.Now()
	err := b.each(ctx, len(changes), func(i int) error {
		c := changes[i]
		e := map[string]any{"id": "e1", "mailbox": c.Mailbox}
		key := map[string]string{"allowed/add": "allow_add", "allowed/remove": "allow_remove",
			"blocked/add": "block_add", "blocked/remove": "block_remove"}[c.List+"/"+c.Op]
		if key == "" {
			return fmt.Errorf("change %+v: unknown list or operation", c)
		}
		e[key] = []string{c.DeviceID}
		lines, err := b.run("baseline-change/1", baselineChangeBody, map[string]any{"edits": []any{e}})
		if err != nil {
			return err
		}
		for _, l := range lines {
			if l["t"] == "result" && l["ok"] != true {
				return fmt.Errorf("change %+v failed: %v", c, l["error"])
			}
		}
		return nil
	})
	res.Changes = len(changes)
	res.Apply = time.Since(start)
	return err
}

// encodedCommand is the powershell.exe command line that runs script.
func encodedCommand(script string) string {
	units := utf16.Encode([]rune(script))
	raw := make([]byte, 2*len(units))
	for i, u := range units {
		raw[2*i], raw[2*i+1] = byte(u), byte(u>>8)
	}
	return "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + base64.StdEncoding.EncodeToString(raw)
}
