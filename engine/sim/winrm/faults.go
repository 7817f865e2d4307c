package winrm

import (
	"fmt"
	"net/http"
)

// fault is a WS-Management fault as Windows sends it: HTTP 500 (or the
// status given), a SOAP 1.2 Fault with a WS-Management subcode, and a
// WSManFault detail carrying Windows' error code and message.
type fault struct {
	status  int
	code    string // s:Sender | s:Receiver
	subcode string // e.g. w:TimedOut
	wsman   uint32 // WSManFault Code
	message string
}

func (f *fault) Error() string { return fmt.Sprintf("%s: %s", f.subcode, f.message) }

// body renders the fault's s:Fault element.
func (f *fault) body(machine string) string {
	msg := escape(f.message)
	return `<s:Fault><s:Code><s:Value>` + f.code + `</s:Value><s:Subcode><s:Value>` + f.subcode +
		`</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">` + msg +
		`</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="` + nsFault + `" Code="` +
		fmt.Sprint(f.wsman) + `" Machine="` + escape(machine) + `"><f:Message>` + msg +
		`</f:Message></f:WSManFault></s:Detail></s:Fault>`
}

// Windows' WSMan error codes for the faults the simulator sends.
const (
	codeTimedOut          = 2150858793 // ERROR_WSMAN_OPERATION_TIMEDOUT
	codeShellNotFound     = 2150858843 // ERROR_WSMAN_SHELL_NOT_FOUND
	codeQuotaMaxShells    = 2150859173 // ERROR_WSMAN_QUOTA_MAX_SHELLS
	codeActionUnsupported = 2150858771 // ERROR_WSMAN_ACTION_NOT_SUPPORTED
	codeInvalidXML        = 2150858778 // ERROR_WSMAN_INVALID_XML
	codeEnvelopeTooLarge  = 2150858817 // ERROR_WSMAN_ENVELOPE_TOO_LARGE
	codeInvalidHeader     = 2150858770 // ERROR_WSMAN_INVALID_HEADER
	codeInternalError     = 1359       // ERROR_INTERNAL_ERROR, the Win32 code a failing provider reports
)

func faultTimedOut() *fault {
	return &fault{status: http.StatusInternalServerError, code: "s:Receiver", subcode: "w:TimedOut", wsman: codeTimedOut,
		message: "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "}
}

func faultMaxShells(limit int) *fault {
	return &fault{status: http.StatusInternalServerError, code: "s:Sender", subcode: "w:QuotaLimit", wsman: codeQuotaMaxShells,
		message: fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ", limit)}
}

func faultShellNotFound(shellID string) *fault {
	return &fault{status: http.StatusInternalServerError, code: "s:Sender", subcode: "w:InvalidSelectors", wsman: codeShellNotFound,
		message: fmt.Sprintf("The request for the Windows Remote Shell with ShellId %s failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and execute the command again. ", shellID)}
}

func faultCommandNotFound(commandID string) *fault {
	return &fault{status: http.StatusInternalServerError, code: "s:Sender", subcode: "w:InvalidSelectors", wsman: codeShellNotFound,
		message: fmt.Sprintf("The request for the Windows Remote Shell failed because the command with CommandId %s was not found on the server. Possible causes are: the specified CommandId is incorrect or the command no longer exists on the server. ", commandID)}
}

func faultActionNotSupported(action string) *fault {
	return &fault{status: http.StatusInternalServerError, code: "s:Sender", subcode: "a:ActionNotSupported", wsman: codeActionUnsupported,
		message: fmt.Sprintf("The WS-Management service cannot process the request because the action %q is not supported for the resource. ", action)}
}

func faultInvalidXML() *fault {
	return &fault{status: http.StatusBadRequest, code: "s:Sender", subcode: "w:SchemaValidationError", wsman: codeInvalidXML,
		message: "The WS-Management service cannot process the request because the XML is invalid. "}
}

func faultEnvelopeTooLarge() *fault {
	return &fault{status: http.StatusBadRequest, code: "s:Sender", subcode: "w:EncodingLimit", wsman: codeEnvelopeTooLarge,
		message: "The WS-Management service cannot process the request because the envelope size exceeds the maximum envelope size configured for the service (MaxEnvelopeSizekb). "}
}

func faultInvalidHeader(what string) *fault {
	return &fault{status: http.StatusBadRequest, code: "s:Sender", subcode: "w:InvalidHeader", wsman: codeInvalidHeader,
		message: fmt.Sprintf("The WS-Management service cannot process the request because the header %s is not valid. ", what)}
}

func faultInvalidStdin(what string) *fault {
	return &fault{status: http.StatusInternalServerError, code: "s:Sender", subcode: "w:InvalidParameter", wsman: codeInvalidHeader,
		message: fmt.Sprintf("The WS-Management service cannot process the request because the stream %s is not valid. ", what)}
}
