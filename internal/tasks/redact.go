package tasks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash"
	"net/url"
	"strings"
	"unicode/utf8"
)

// A redactor removes secret values from text a provider sent (an error
// message, a job's task description) before it is stored, logged or sent
// in a webhook.
//
// It knows each secret in the forms a provider could echo it (see
// secretForms) only as keyed digests, so that the record can keep what
// the polls need after the launch without keeping the secrets: at launch
// the params' secret values are replaced by "REMOVED" and the digests are
// stored instead. The digest key is derived from a random salt stored with
// them and from the account's API credential, which is never in Redis: a
// reader of Redis alone cannot test guesses against them. (A simulated
// provider has no credential; its digests are keyed by the salt alone.)
//
// Scanning is one HMAC per byte of text: every position is tested against
// the digests of each form's first redactProbeLen bytes, and a hit is
// confirmed with the digest of the whole form.
type redactor struct {
	mac     hash.Hash
	salt    []byte
	entries map[probe][]redactEntry
	forms   int
}

type probe [8]byte

type redactEntry struct {
	length int
	sum    [16]byte
	// toRunEnd marks the probe of a long base64 form: a provider that cut
	// its message short may echo only the start; the redaction then runs
	// to the end of the base64 characters.
	toRunEnd bool
}

const (
	redactProbeLen = minSecretLen
	// redactRunPrefix is how much of a long base64 form identifies it.
	redactRunPrefix = 24
	// maxRedactForms bounds the digests one operation keeps (a long script
	// has a form per line).
	maxRedactForms = 1024
	// maxRedactScan bounds the text scanned; beyond it text is cut.
	maxRedactScan = 64 << 10
	// withheld replaces a message that holds a secret only once decoded.
	withheld = "(the provider's message is withheld: it quoted a secret value)"
)

// newRedactor returns an empty redactor keyed by salt and credential.
func newRedactor(salt []byte, credential string) *redactor {
	key := salt
	if credential != "" {
		m := hmac.New(sha256.New, salt)
		m.Write([]byte(credential))
		key = m.Sum(nil)
	}
	return &redactor{mac: hmac.New(sha256.New, key), salt: salt, entries: map[probe][]redactEntry{}}
}

func newSalt() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b
}

func (r *redactor) sum(b string) [32]byte {
	r.mac.Reset()
	r.mac.Write([]byte(b))
	var out [32]byte
	copy(out[:], r.mac.Sum(nil))
	return out
}

func (r *redactor) probeOf(s string) probe {
	full := r.sum(s)
	var p probe
	copy(p[:], full[:8])
	return p
}

func (r *redactor) addForm(f string, toRunEnd bool) {
	if len(f) < minSecretLen || r.forms >= maxRedactForms {
		return
	}
	full := r.sum(f)
	e := redactEntry{length: len(f), toRunEnd: toRunEnd}
	copy(e.sum[:], full[:16])
	p := r.probeOf(f[:redactProbeLen])
	for _, old := range r.entries[p] {
		if old == e {
			return
		}
	}
	r.entries[p] = append(r.entries[p], e)
	r.forms++
}

// add learns a secret value in every form a provider could echo.
func (r *redactor) add(secret string) {
	for _, f := range secretForms(secret) {
		r.addForm(f, false)
	}
	for _, f := range base64Forms(secret) {
		if len(f) > redactRunPrefix {
			r.addForm(f[:redactRunPrefix], true)
		}
	}
}

// redact returns s with every echoed form replaced by [REDACTED]. When a
// secret shows only once s is JSON- or URL-decoded, the whole text is
// withheld.
func (r *redactor) redact(s string) string {
	if r == nil || r.forms == 0 || len(s) < minSecretLen {
		return s
	}
	if len(s) > maxRedactScan {
		s = strings.ToValidUTF8(s[:maxRedactScan], "") + "…"
	}
	marks := r.find(s)
	out := s
	if len(marks) > 0 {
		var b strings.Builder
		last := 0
		for _, m := range marks {
			b.WriteString(s[last:m[0]])
			b.WriteString("[REDACTED]")
			last = m[1]
		}
		b.WriteString(s[last:])
		out = b.String()
	}
	for _, v := range decodedVariants(out) {
		if len(r.find(v)) > 0 {
			return withheld
		}
	}
	return out
}

// find returns the merged byte ranges of s that hold a known form.
func (r *redactor) find(s string) [][2]int {
	var marks [][2]int
	for i := 0; i+redactProbeLen <= len(s); i++ {
		cands, ok := r.entries[r.probeOf(s[i:i+redactProbeLen])]
		if !ok {
			continue
		}
		for _, e := range cands {
			if i+e.length > len(s) {
				continue
			}
			full := r.sum(s[i : i+e.length])
			if [16]byte(full[:16]) != e.sum {
				continue
			}
			end := i + e.length
			if e.toRunEnd {
				for end < len(s) && isBase64Byte(s[end]) {
					end++
				}
			}
			marks = append(marks, [2]int{i, end})
		}
	}
	return mergeRanges(marks)
}

func mergeRanges(in [][2]int) [][2]int {
	if len(in) == 0 {
		return nil
	}
	// in is ordered by start already (found left to right).
	out := [][2]int{in[0]}
	for _, m := range in[1:] {
		last := &out[len(out)-1]
		if m[0] <= last[1] {
			last[1] = max(last[1], m[1])
			continue
		}
		out = append(out, m)
	}
	return out
}

func isBase64Byte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-' || c == '_'
}

// decodedVariants are s with JSON string escapes and URL percent-escapes
// decoded, where that changes anything.
func decodedVariants(s string) []string {
	var out []string
	if strings.Contains(s, `\`) {
		if v := unescapeJSON(s); v != s {
			out = append(out, v)
		}
	}
	if strings.Contains(s, "%") {
		if v, err := url.PathUnescape(s); err == nil && v != s {
			out = append(out, v)
		} else if v := lenientPercentDecode(s); v != s {
			out = append(out, v)
		}
	}
	return out
}

// unescapeJSON decodes JSON string escapes (\" \\ \/ \n \uXXXX …) found
// anywhere in s; other text is kept as is.
func unescapeJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch n := s[i+1]; n {
		case '"', '\\', '/':
			b.WriteByte(n)
			i++
		case 'n':
			b.WriteByte('\n')
			i++
		case 'r':
			b.WriteByte('\r')
			i++
		case 't':
			b.WriteByte('\t')
			i++
		case 'b':
			b.WriteByte('\b')
			i++
		case 'f':
			b.WriteByte('\f')
			i++
		case 'u':
			if i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
				if str, ok := jsonString(s[i : i+12]); ok && !strings.ContainsRune(str, utf8.RuneError) {
					b.WriteString(str) // a surrogate pair
					i += 11
					continue
				}
			}
			if i+6 <= len(s) {
				if str, ok := jsonString(s[i : i+6]); ok {
					b.WriteString(str)
					i += 5
					continue
				}
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// jsonString decodes one JSON string escape sequence.
func jsonString(seq string) (string, bool) {
	var str string
	if json.Unmarshal([]byte(`"`+seq+`"`), &str) != nil {
		return "", false
	}
	return str, true
}

// lenientPercentDecode decodes the valid %XX escapes of s.
func lenientPercentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// base64Forms are the base64 encodings of v a provider may use.
func base64Forms(v string) []string {
	b := []byte(v)
	return []string{
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
	}
}

// digests encodes what the record keeps after the launch: the salt and
// the entries, not the secrets.
func (r *redactor) digests() string {
	if r.forms == 0 {
		return ""
	}
	buf := make([]byte, 0, r.forms*29)
	for p, list := range r.entries {
		for _, e := range list {
			buf = append(buf, p[:]...)
			buf = binary.BigEndian.AppendUint32(buf, uint32(e.length))
			buf = append(buf, e.sum[:]...)
			flag := byte(0)
			if e.toRunEnd {
				flag = 1
			}
			buf = append(buf, flag)
		}
	}
	return base64.RawStdEncoding.EncodeToString(r.salt) + "." + base64.RawStdEncoding.EncodeToString(buf)
}

// redactorFromDigests rebuilds a redactor from digests() output and the
// account's credential.
func redactorFromDigests(s, credential string) (*redactor, error) {
	saltPart, entriesPart, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errors.New("redaction digests: malformed")
	}
	salt, err := base64.RawStdEncoding.DecodeString(saltPart)
	if err != nil {
		return nil, errors.New("redaction digests: malformed salt")
	}
	buf, err := base64.RawStdEncoding.DecodeString(entriesPart)
	if err != nil || len(buf)%29 != 0 {
		return nil, errors.New("redaction digests: malformed entries")
	}
	r := newRedactor(salt, credential)
	for len(buf) > 0 {
		var p probe
		copy(p[:], buf[:8])
		e := redactEntry{length: int(binary.BigEndian.Uint32(buf[8:12])), toRunEnd: buf[28] == 1}
		copy(e.sum[:], buf[12:28])
		r.entries[p] = append(r.entries[p], e)
		r.forms++
		buf = buf[29:]
	}
	return r, nil
}
