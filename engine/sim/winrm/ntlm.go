package winrm

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //nolint:staticcheck // NTLM's NT hash is MD4 by definition (MS-NLMP 3.3.1)
)

// NTLM (MS-NLMP) as Windows' HTTP stack speaks it inside the Negotiate
// scheme: the client sends a NEGOTIATE_MESSAGE, the server answers 401
// with a CHALLENGE_MESSAGE, and the client proves it knows the password
// with an NTLMv2 response in the AUTHENTICATE_MESSAGE, on the same TCP
// connection. The connection then stays authenticated: later requests on
// it need no Authorization header. A challenge is only good on the
// connection it was sent on.

// NTLM message types and the flags the simulator sends.
const (
	ntlmNegotiate    = 1
	ntlmChallenge    = 2
	ntlmAuthenticate = 3

	flagUnicode          = 0x00000001
	flagRequestTarget    = 0x00000004
	flagNTLM             = 0x00000200
	flagAlwaysSign       = 0x00008000
	flagTargetTypeDomain = 0x00010000
	flagExtendedSecurity = 0x00080000
	flagTargetInfo       = 0x00800000
	flagVersion          = 0x02000000
	flag128              = 0x20000000
	flag56               = 0x80000000

	avEOL             = 0
	avNbComputerName  = 1
	avNbDomainName    = 2
	avDNSComputerName = 3
	avDNSDomainName   = 4
	avTimestamp       = 7
)

var ntlmSignature = []byte("NTLMSSP\x00")

// errNTLM is any NTLM message the simulator cannot read.
var errNTLM = errors.New("malformed NTLM message")

// ntlmMessageType returns the type of an NTLM message.
func ntlmMessageType(msg []byte) (uint32, error) {
	if len(msg) < 12 || !bytes.Equal(msg[:8], ntlmSignature) {
		return 0, errNTLM
	}
	return binary.LittleEndian.Uint32(msg[8:12]), nil
}

// challengeMessage builds a CHALLENGE_MESSAGE for the server's domain and
// computer name, with a fresh 8-byte server challenge.
func challengeMessage(domain, computer string, now time.Time) (msg []byte, challenge [8]byte) {
	_, _ = rand.Read(challenge[:]) // crypto/rand never fails on supported platforms
	target := utf16le(domain)
	var info bytes.Buffer
	av := func(id uint16, v []byte) {
		_ = binary.Write(&info, binary.LittleEndian, id)
		_ = binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	av(avNbDomainName, utf16le(domain))
	av(avNbComputerName, utf16le(computer))
	av(avDNSDomainName, utf16le(strings.ToLower(domain)+".local"))
	av(avDNSComputerName, utf16le(strings.ToLower(computer)+"."+strings.ToLower(domain)+".local"))
	var ts [8]byte
	binary.LittleEndian.PutUint64(ts[:], uint64(now.UnixNano()/100)+116444736000000000) // FILETIME
	av(avTimestamp, ts[:])
	av(avEOL, nil)

	const header = 56 // through the Version field
	flags := uint32(flagUnicode | flagRequestTarget | flagNTLM | flagAlwaysSign | flagTargetTypeDomain |
		flagExtendedSecurity | flagTargetInfo | flagVersion | flag128 | flag56)
	var b bytes.Buffer
	b.Write(ntlmSignature)
	_ = binary.Write(&b, binary.LittleEndian, uint32(ntlmChallenge))
	writeVarField(&b, len(target), header)
	_ = binary.Write(&b, binary.LittleEndian, flags)
	b.Write(challenge[:])
	b.Write(make([]byte, 8)) // reserved
	writeVarField(&b, info.Len(), header+len(target))
	b.Write([]byte{10, 0, 0x63, 0x45, 0, 0, 0, 15}) // Windows 10.0.17763, NTLM revision 15
	b.Write(target)
	b.Write(info.Bytes())
	return b.Bytes(), challenge
}

func writeVarField(b *bytes.Buffer, n, offset int) {
	_ = binary.Write(b, binary.LittleEndian, uint16(n))
	_ = binary.Write(b, binary.LittleEndian, uint16(n))
	_ = binary.Write(b, binary.LittleEndian, uint32(offset))
}

// authenticateMessage is what the simulator reads of an AUTHENTICATE_MESSAGE.
type authenticateMessage struct {
	domain, user string
	ntResponse   []byte
}

func parseAuthenticate(msg []byte) (*authenticateMessage, error) {
	if t, err := ntlmMessageType(msg); err != nil || t != ntlmAuthenticate || len(msg) < 64 {
		return nil, errNTLM
	}
	field := func(at int) ([]byte, error) {
		n := int(binary.LittleEndian.Uint16(msg[at:]))
		off := int(binary.LittleEndian.Uint32(msg[at+4:]))
		if off < 0 || n < 0 || off > len(msg) || n > len(msg)-off {
			return nil, errNTLM
		}
		return msg[off : off+n], nil
	}
	flags := binary.LittleEndian.Uint32(msg[60:])
	nt, err := field(20)
	if err != nil {
		return nil, err
	}
	dom, err := field(28)
	if err != nil {
		return nil, err
	}
	usr, err := field(36)
	if err != nil {
		return nil, err
	}
	text := func(b []byte) string {
		if flags&flagUnicode == 0 {
			return string(b) // OEM: ASCII is all the simulator takes
		}
		return fromUTF16le(b)
	}
	return &authenticateMessage{domain: text(dom), user: text(usr), ntResponse: nt}, nil
}

// verifyNTLMv2 checks an NTLMv2 response (MS-NLMP 3.3.2): NTProofStr =
// HMAC-MD5(NTOWFv2, ServerChallenge ‖ temp), where NTOWFv2 =
// HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) ‖ domain)).
func verifyNTLMv2(m *authenticateMessage, password string, challenge [8]byte) bool {
	if len(m.ntResponse) < 16+28 || m.ntResponse[16] != 1 || m.ntResponse[17] != 1 {
		return false // shorter than NTProofStr plus the fixed part of temp, or not NTLMv2
	}
	h := md4.New()
	h.Write(utf16le(password))
	ntowf := hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(m.user)+m.domain))
	proof, temp := m.ntResponse[:16], m.ntResponse[16:]
	want := hmacMD5(ntowf, challenge[:], temp)
	return subtle.ConstantTimeCompare(proof, want) == 1
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	mac := hmac.New(md5.New, key)
	for _, d := range data {
		mac.Write(d)
	}
	return mac.Sum(nil)
}

func utf16le(s string) []byte {
	units := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(units))
	for i, u := range units {
		binary.LittleEndian.PutUint16(b[2*i:], u)
	}
	return b
}

func fromUTF16le(b []byte) string {
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(units))
}

// authScheme splits an Authorization header into its scheme and token.
func authScheme(h string) (scheme string, token []byte, ok bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	token, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return scheme, nil, false
	}
	return scheme, token, true
}
