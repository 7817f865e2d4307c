package winrm

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// XML namespaces of the WS-Management remote shell protocol.
const (
	nsSOAP      = "http://www.w3.org/2003/05/soap-envelope"
	nsAddress   = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsTransfer  = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	nsWSMan     = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsWSManMSFT = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	nsShell     = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsFault     = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
)

// Actions the server answers, and the resource they act on.
const (
	actionCreate  = nsTransfer + "/Create"
	actionDelete  = nsTransfer + "/Delete"
	actionCommand = nsShell + "/Command"
	actionSend    = nsShell + "/Send"
	actionReceive = nsShell + "/Receive"
	actionSignal  = nsShell + "/Signal"
	actionFault   = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

	resourceCmd     = nsShell + "/cmd"
	signalTerminate = nsShell + "/signal/terminate"
	stateDone       = nsShell + "/CommandState/Done"
	stateRunning    = nsShell + "/CommandState/Running"
	anonymous       = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
)

// Envelope size limits. A client asks for answers up to MaxEnvelopeSize
// bytes (masterzen/winrm: 153,600); Windows refuses less than 8,192.
const (
	defaultMaxEnvelope = 153600
	minMaxEnvelope     = 8192
)

// request is the part of a WS-Management request envelope the server reads.
type request struct {
	XMLName xml.Name      `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  requestHeader `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body    requestBody   `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

type requestHeader struct {
	To               string     `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing To"`
	Action           string     `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
	MessageID        string     `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
	ResourceURI      string     `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd ResourceURI"`
	MaxEnvelopeSize  string     `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd MaxEnvelopeSize"`
	OperationTimeout string     `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OperationTimeout"`
	Selectors        []selector `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet>Selector"`
	Options          []selector `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OptionSet>Option"`
}

type selector struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:",chardata"`
}

type requestBody struct {
	Shell       *shellBody      `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
	CommandLine *commandLine    `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandLine"`
	Send        *sendBody       `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Send"`
	Receive     *receiveRequest `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Receive"`
	Signal      *signalBody     `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Signal"`
}

type shellBody struct {
	InputStreams  string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell InputStreams"`
	OutputStreams string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell OutputStreams"`
}

type commandLine struct {
	Command   string   `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Command"`
	Arguments []string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Arguments"`
}

type sendBody struct {
	Streams []stream `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Stream"`
}

type stream struct {
	Name      string `xml:"Name,attr"`
	CommandID string `xml:"CommandId,attr"`
	End       string `xml:"End,attr"`
	Data      string `xml:",chardata"`
}

type receiveRequest struct {
	DesiredStream struct {
		CommandID string `xml:"CommandId,attr"`
		Streams   string `xml:",chardata"`
	} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell DesiredStream"`
}

type signalBody struct {
	CommandID string `xml:"CommandId,attr"`
	Code      string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Code"`
}

// errMalformed reports a request body that is not a WS-Management envelope.
var errMalformed = errors.New("malformed envelope")

// parseRequest decodes a request envelope. It never panics: anything that
// is not well-formed XML in the SOAP envelope namespace is errMalformed.
func parseRequest(body []byte) (*request, error) {
	var req request
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return &req, nil
}

// shellID returns the ShellId selector of the request.
func (r *request) shellID() string {
	for _, s := range r.Header.Selectors {
		if s.Name == "ShellId" {
			return strings.TrimSpace(s.Value)
		}
	}
	return ""
}

// maxEnvelope returns the answer size the client accepts, in bytes.
func (r *request) maxEnvelope() (int, error) {
	v := strings.TrimSpace(r.Header.MaxEnvelopeSize)
	if v == "" {
		return defaultMaxEnvelope, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minMaxEnvelope {
		return 0, fmt.Errorf("MaxEnvelopeSize %q", v)
	}
	return n, nil
}

// operationTimeout returns the request's OperationTimeout, def when absent.
func (r *request) operationTimeout(def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(r.Header.OperationTimeout)
	if v == "" {
		return def, nil
	}
	return parseDuration(v)
}

// parseDuration parses an xs:duration of days, hours, minutes and seconds
// (PT60S, PT60.000S, PT1M30S, P0DT0H0M20S), the forms WinRM clients send.
func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("duration %q", s)
	if len(s) < 3 || s[0] != 'P' {
		return 0, bad
	}
	var total float64
	inTime := false
	num := ""
	for _, c := range s[1:] {
		switch {
		case c >= '0' && c <= '9' || c == '.':
			num += string(c)
			continue
		case c == 'T':
			if inTime || num != "" {
				return 0, bad
			}
			inTime = true
			continue
		}
		if num == "" {
			return 0, bad
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f < 0 {
			return 0, bad
		}
		num = ""
		switch {
		case c == 'D' && !inTime:
			total += f * 86400
		case c == 'H' && inTime:
			total += f * 3600
		case c == 'M' && inTime:
			total += f * 60
		case c == 'S' && inTime:
			total += f
		default:
			return 0, bad
		}
	}
	if num != "" || total > 1e7 {
		return 0, bad
	}
	return time.Duration(total * float64(time.Second)), nil
}

// envelope builds an answer: the SOAP envelope with WS-Addressing headers
// relating it to the request, around body (already XML).
func envelope(action, relatesTo, body string) string {
	var b strings.Builder
	b.Grow(len(body) + 900)
	b.WriteString(`<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddress +
		`" xmlns:x="` + nsTransfer + `" xmlns:w="` + nsWSMan + `" xmlns:rsp="` + nsShell +
		`" xmlns:p="` + nsWSManMSFT + `"><s:Header><a:Action>`)
	b.WriteString(action)
	b.WriteString(`</a:Action><a:MessageID>`)
	b.WriteString(newUUID("uuid:"))
	b.WriteString(`</a:MessageID><a:To>` + anonymous + `</a:To><a:RelatesTo>`)
	b.WriteString(escape(relatesTo))
	b.WriteString(`</a:RelatesTo></s:Header><s:Body>`)
	b.WriteString(body)
	b.WriteString(`</s:Body></s:Envelope>`)
	return b.String()
}

// escape returns s as XML character data.
func escape(s string) string {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return ""
	}
	return b.String()
}
