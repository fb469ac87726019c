package api_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/api"
)

var uiTokens = []api.Token{{Name: "ro", Secret: readTok, Scope: api.ScopeRead}, {Name: "ci", Secret: writeTok, Scope: api.ScopeWrite}}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// uiServer serves the API and a UI at /ui whose handlers say which one
// answered ("ro" or "rw") and count the requests that reached them.
type uiServer struct {
	*httptest.Server
	reached atomic.Int64
}

func newUIServer(t *testing.T, tokens []api.Token, now func() time.Time, tls bool) *uiServer {
	t.Helper()
	s := &uiServer{}
	a := api.New(api.Config{Tokens: tokens, Now: now})
	ui := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.reached.Add(1)
			tok, _ := api.TokenFrom(r.Context())
			_, _ = io.WriteString(w, name+" "+tok.Name+" "+r.Method+" "+r.URL.Path)
		})
	}
	mux := http.NewServeMux()
	a.Register(mux)
	a.RegisterUI(mux, "/ui", ui("ro"), ui("rw"))
	if tls {
		s.Server = httptest.NewTLSServer(mux)
	} else {
		s.Server = httptest.NewServer(mux)
	}
	t.Cleanup(s.Close)
	return s
}

// do sends a request without following redirects; hdr are name, value
// pairs.
func (s *uiServer) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	c := s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login posts the login form as a browser on the UI's page would (or
// with the headers hdr instead) and returns the session cookie (nil when
// none was set).
func (s *uiServer) login(t *testing.T, token string, hdr ...string) (*http.Response, *http.Cookie) {
	t.Helper()
	if len(hdr) == 0 {
		hdr = []string{"Sec-Fetch-Site", "same-origin", "Origin", s.URL}
	}
	resp, _ := s.do(t, "POST", "/ui/login", url.Values{"token": {token}}.Encode(),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			return resp, c
		}
	}
	return resp, nil
}

func cookieHdr(c *http.Cookie) string { return c.Name + "=" + c.Value }

func basic(tok string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+tok))
}

func TestUILogin(t *testing.T) {
	t.Parallel()
	s := newUIServer(t, uiTokens, nil, false)

	resp, _ := s.do(t, "GET", "/ui/", "")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "a page load without credentials goes to the login form")
	assert.Equal(t, "/ui/login", resp.Header.Get("Location"))
	resp, _ = s.do(t, "GET", "/ui/api/queues", "")
	assert.Equal(t, 401, resp.StatusCode, "the UI's API gets a 401")
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Equal(t, []string{`Bearer realm="opsworker"`}, resp.Header.Values("WWW-Authenticate"), "no Basic challenge, so no browser prompt")

	resp, page := s.do(t, "GET", "/ui/login", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, page, `<form method="post" action="/ui/login">`)
	assert.Contains(t, page, `name="token" type="password"`)
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	assert.Equal(t, "frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	resp, c := s.login(t, "wrong-token-0123456789")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Nil(t, c, "no session for a bad token")

	resp, c = s.login(t, writeTok)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/ui/", resp.Header.Get("Location"))
	require.NotNil(t, c)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.Equal(t, int((12 * time.Hour).Seconds()), c.MaxAge)
	assert.WithinDuration(t, time.Now().Add(12*time.Hour), c.Expires, time.Minute)
	assert.False(t, c.Secure, "plain HTTP")
	assert.NotContains(t, c.Value, writeTok, "the cookie is not the token")

	_, body := s.do(t, "GET", "/ui/", "", "Cookie", cookieHdr(c))
	assert.Equal(t, "rw ci GET /ui/", body, "a write token's session gets the read-write UI")
	_, page = s.do(t, "GET", "/ui/login", "", "Cookie", cookieHdr(c))
	assert.Contains(t, page, "Signed in with the token <b>ci</b> (write)")
	assert.Contains(t, page, `action="/ui/logout"`)

	resp, _ = s.do(t, "GET", "/v1/operations", "", "Cookie", cookieHdr(c))
	assert.Equal(t, 401, resp.StatusCode, "the session opens the UI only, not /v1")

	_, rc := s.login(t, readTok)
	require.NotNil(t, rc)
	_, body = s.do(t, "GET", "/ui/api/queues", "", "Cookie", cookieHdr(rc))
	assert.Equal(t, "ro ro GET /ui/api/queues", body, "a read token's session gets the read-only UI")

	resp, _ = s.do(t, "POST", "/ui/logout", "", "Cookie", cookieHdr(c), "Sec-Fetch-Site", "same-origin")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/ui/login", resp.Header.Get("Location"))
	var cleared *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == api.SessionCookie {
			cleared = k
		}
	}
	require.NotNil(t, cleared, "logout sets the cookie")
	assert.Empty(t, cleared.Value)
	assert.Less(t, cleared.MaxAge, 0, "and expires it")
}

// Unsafe requests from another origin never reach the UI or the API,
// whatever credentials the browser attaches; same-origin ones do.
func TestUICrossOriginWrites(t *testing.T) {
	t.Parallel()
	s := newUIServer(t, uiTokens, nil, false)
	_, c := s.login(t, writeTok)
	require.NotNil(t, c)
	other := "http://127.0.0.1:1" // same site (the host), another origin (the port)
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"SecFetchSameSite", []string{"Sec-Fetch-Site", "same-site", "Origin", other}},
		{"SecFetchCrossSite", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://localhost:1"}},
		{"OriginOnly", []string{"Origin", other}},
		{"NullOrigin", []string{"Origin", "null"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.reached.Load()
			for _, req := range []struct{ method, path, ct, body string }{
				{"POST", "/ui/api/queues/default:pause", "application/x-www-form-urlencoded", ""},
				{"POST", "/ui/api/queues/default:pause", "text/plain", "x"},
				{"DELETE", "/ui/api/queues/default", "", ""},
				{"POST", "/v1/operations", "text/plain", purge},
				{"POST", "/v1/operations", "application/json", purge},
			} {
				for _, auth := range [][]string{{"Cookie", cookieHdr(c)}, {"Authorization", basic(writeTok)}, {"Authorization", "Bearer " + writeTok}} {
					hdr := append(append([]string{"Content-Type", req.ct}, auth...), tc.hdr...)
					resp, _ := s.do(t, req.method, req.path, req.body, hdr...)
					assert.Equal(t, 403, resp.StatusCode, "%s %s %s", req.method, req.path, auth[0])
					assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
				}
			}
			resp, lc := s.login(t, writeTok, tc.hdr...)
			assert.Equal(t, 403, resp.StatusCode, "login from another origin")
			assert.Nil(t, lc)
			assert.Equal(t, before, s.reached.Load(), "no request reached the UI")
		})
	}
	// The UI's own page may act.
	resp, body := s.do(t, "POST", "/ui/api/queues/default:pause", "", "Cookie", cookieHdr(c), "Sec-Fetch-Site", "same-origin", "Origin", s.URL)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "rw ci POST /ui/api/queues/default:pause", body)
	resp, _ = s.do(t, "POST", "/ui/api/queues/default:pause", "", "Cookie", cookieHdr(c), "Origin", s.URL)
	assert.Equal(t, 200, resp.StatusCode, "Origin naming this host, without Sec-Fetch-Site")
	// So may a script that is no browser (no Origin, no Sec-Fetch-Site).
	resp, body = s.do(t, "POST", "/ui/api/queues/default:pause", "", "Authorization", basic(writeTok))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "rw ci POST /ui/api/queues/default:pause", body)
	resp, body = s.do(t, "GET", "/ui/api/queues", "", "Authorization", "bearer "+readTok)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "ro ro GET /ui/api/queues", body)
	// A read session may look, not act: a 403 problem that says why.
	_, rc := s.login(t, readTok)
	require.NotNil(t, rc)
	before := s.reached.Load()
	resp, body = s.do(t, "POST", "/ui/api/queues/default:pause", "", "Cookie", cookieHdr(rc), "Sec-Fetch-Site", "same-origin", "Origin", s.URL)
	assert.Equal(t, 403, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, "scope read")
	assert.Equal(t, before, s.reached.Load(), "the read-only UI is not asked")
	resp, _ = s.do(t, "GET", "/ui/api/queues", "", "Authorization", "Bearer nope-0123456789abcdef", "Cookie", cookieHdr(c))
	assert.Equal(t, 401, resp.StatusCode, "a bad Authorization header is not rescued by a cookie")
}

func TestUISessionExpires(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := newUIServer(t, uiTokens, clk.Now, false)
	_, c := s.login(t, writeTok)
	require.NotNil(t, c)
	assert.Equal(t, clk.Now().Add(12*time.Hour), c.Expires)
	clk.Add(12*time.Hour - time.Second)
	resp, _ := s.do(t, "GET", "/ui/", "", "Cookie", cookieHdr(c))
	assert.Equal(t, 200, resp.StatusCode, "still valid a second before the end")
	clk.Add(time.Second)
	resp, _ = s.do(t, "GET", "/ui/", "", "Cookie", cookieHdr(c))
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "expired after 12h: back to the login form")
	resp, _ = s.do(t, "GET", "/ui/api/queues", "", "Cookie", cookieHdr(c))
	assert.Equal(t, 401, resp.StatusCode)
}

// A session is signed: it cannot be edited, it holds everywhere the
// token is configured the same, and ends when the token changes.
func TestUISessionSigned(t *testing.T) {
	t.Parallel()
	s := newUIServer(t, uiTokens, nil, false)
	_, c := s.login(t, readTok)
	require.NotNil(t, c)
	parts := strings.Split(c.Value, ".")
	require.Len(t, parts, 4)

	forged := func(f func(p []string)) *http.Cookie {
		p := append([]string(nil), parts...)
		f(p)
		return &http.Cookie{Name: api.SessionCookie, Value: strings.Join(p, ".")}
	}
	_, wc := s.login(t, writeTok)
	require.NotNil(t, wc)
	wparts := strings.Split(wc.Value, ".")
	for name, bad := range map[string]*http.Cookie{
		"OtherName": forged(func(p []string) { p[1] = wparts[1] }),
		"LaterExpiry": forged(func(p []string) {
			n, err := strconv.ParseInt(p[2], 10, 64)
			require.NoError(t, err)
			p[2] = strconv.FormatInt(n+1, 10)
		}),
		"FarExpiry":    forged(func(p []string) { p[2] = "99999999999" }),
		"BadMAC":       forged(func(p []string) { p[3] = wparts[3] }),
		"NoMAC":        forged(func(p []string) { p[3] = "" }),
		"OtherVersion": forged(func(p []string) { p[0] = "v2" }),
		"TokenAsValue": {Name: api.SessionCookie, Value: readTok},
		"Empty":        {Name: api.SessionCookie, Value: ""},
	} {
		resp, _ := s.do(t, "GET", "/ui/api/queues", "", "Cookie", cookieHdr(bad))
		assert.Equal(t, 401, resp.StatusCode, name)
	}

	replica := newUIServer(t, []api.Token{{Name: "ci", Secret: writeTok, Scope: api.ScopeWrite}, {Name: "ro", Secret: readTok, Scope: api.ScopeRead}}, nil, false)
	_, body := replica.do(t, "GET", "/ui/api/queues", "", "Cookie", cookieHdr(c))
	assert.Equal(t, "ro ro GET /ui/api/queues", body, "another replica with the same tokens accepts it")
	for name, tokens := range map[string][]api.Token{
		"Rotated":      {{Name: "ro", Secret: "rotated-read-token-0123", Scope: api.ScopeRead}, uiTokens[1]},
		"Removed":      {uiTokens[1]},
		"ScopeChanged": {{Name: "ro", Secret: readTok, Scope: api.ScopeWrite}, uiTokens[1]},
		"Renamed":      {{Name: "viewer", Secret: readTok, Scope: api.ScopeRead}, uiTokens[1]},
	} {
		other := newUIServer(t, tokens, nil, false)
		resp, _ := other.do(t, "GET", "/ui/api/queues", "", "Cookie", cookieHdr(c))
		assert.Equal(t, 401, resp.StatusCode, name)
	}
}

func TestUISessionSecureOverTLS(t *testing.T) {
	t.Parallel()
	s := newUIServer(t, uiTokens, nil, true)
	_, c := s.login(t, writeTok)
	require.NotNil(t, c)
	assert.True(t, c.Secure, "Secure over HTTPS")

	plain := newUIServer(t, uiTokens, nil, false)
	_, c = plain.login(t, writeTok, "X-Forwarded-Proto", "https")
	require.NotNil(t, c)
	assert.True(t, c.Secure, "Secure behind a TLS-terminating proxy")
}
