package api

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Queue-UI sessions.
//
// A browser logs in once with a token (POST <root>/login) and gets a
// session cookie; the cookie, not a cached Authorization header, then
// opens the UI. The cookie is HttpOnly, SameSite=Strict, Secure over
// HTTPS, and its value is not the token: it names the token and an
// expiry, signed with HMAC-SHA256 under a key derived (HKDF) from the
// token's secret. So every replica with the same tokens accepts it, and
// removing or rotating the token (or changing its scope) ends its
// sessions. Unsafe requests from a page of another origin are refused
// (net/http CrossOriginProtection), login and logout included.

const (
	// SessionCookie is the queue UI's session cookie.
	SessionCookie = "opsworker_session"
	// DefaultSessionTTL is how long a login lasts unless
	// Config.SessionTTL says otherwise.
	DefaultSessionTTL = 12 * time.Hour
	// sessionSkew is how far another replica's clock may run ahead of
	// this one's: a session expiring later than now+TTL+skew was not made
	// by us.
	sessionSkew = 5 * time.Minute
	// maxLoginForm bounds the login form's body.
	maxLoginForm = 4 << 10
)

// sessionKey derives a token's session-signing key from its secret.
func sessionKey(secret string) []byte {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "opsworker queue-ui session v1", sha256.Size)
	if err != nil {
		panic(err) // only for lengths over 255*32 bytes
	}
	return key
}

// sessionMAC signs (token name, scope, expiry) under the token's key.
func sessionMAC(t *Token, exp int64) []byte {
	m := hmac.New(sha256.New, sessionKey(t.Secret))
	m.Write([]byte("v1\x00" + t.Name + "\x00" + t.Scope + "\x00" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// newSession returns a session cookie value for t and its expiry:
// v1.<base64url(name)>.<expiry, Unix seconds>.<base64url(HMAC)>.
func (a *API) newSession(t *Token) (string, time.Time) {
	exp := a.cfg.Now().Add(a.cfg.SessionTTL).Truncate(time.Second)
	return strings.Join([]string{"v1", base64.RawURLEncoding.EncodeToString([]byte(t.Name)),
		strconv.FormatInt(exp.Unix(), 10), base64.RawURLEncoding.EncodeToString(sessionMAC(t, exp.Unix()))}, "."), exp
}

// fromSession returns the token the request's session cookie names, if
// the cookie is well signed and unexpired.
func (a *API) fromSession(r *http.Request) *Token {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return nil
	}
	name, err1 := base64.RawURLEncoding.DecodeString(parts[1])
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	mac, err3 := base64.RawURLEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil
	}
	now := a.cfg.Now()
	if exp <= now.Unix() || exp > now.Add(a.cfg.SessionTTL+sessionSkew).Unix() {
		return nil
	}
	for i := range a.cfg.Tokens {
		t := &a.cfg.Tokens[i]
		if t.Name == string(name) && hmac.Equal(mac, sessionMAC(t, exp)) {
			return t
		}
	}
	return nil
}

// RegisterUI mounts a browser UI at root (e.g. "/ui") on mux:
//
//   - GET <root>/login: the login form; POST <root>/login checks the
//     token and sets the session cookie; POST <root>/logout clears it;
//   - <root>/: readWrite for write tokens, readOnly for read tokens,
//     authenticated by the session cookie or, for scripts, the
//     Authorization header (as Require). Without either, a page load is
//     redirected to the login form and anything else gets a 401.
//
// Every unsafe request must come from the UI's own origin (403
// otherwise), and no UI page may be framed by another site.
func (a *API) RegisterUI(mux *http.ServeMux, root string, readOnly, readWrite http.Handler) {
	mux.Handle("GET "+root+"/login", uiHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.loginPage(w, r, root, http.StatusOK, "")
	})))
	mux.Handle("POST "+root+"/login", uiHeaders(a.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.login(w, r, root)
	}))))
	mux.Handle("POST "+root+"/logout", uiHeaders(a.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, a.cookie(r, "", -1))
		http.Redirect(w, r, root+"/login", http.StatusSeeOther)
	}))))
	mux.Handle(root+"/", uiHeaders(a.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, inHeader := a.fromHeader(r)
		if !inHeader {
			tok = a.fromSession(r)
		}
		if tok == nil {
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(r.URL.Path, root+"/api/") {
				http.Redirect(w, r, root+"/login", http.StatusSeeOther)
				return
			}
			unauthorized(w)
			return
		}
		ui := readOnly
		if tok.Scope == ScopeWrite {
			ui = readWrite
		} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// The read-only UI would answer 405 in plain text; say why.
			problem(w, http.StatusForbidden, fmt.Sprintf("token %q has scope %s; changing queues needs %s", tok.Name, tok.Scope, ScopeWrite), "")
			return
		}
		a.allow(w, r, ScopeRead, tok, ui)
	}))))
}

// uiHeaders forbids framing (clickjacking) of every UI response.
func uiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// cookie is the session cookie with value; maxAge < 0 deletes it.
// Secure when the request came over HTTPS (directly, or through a proxy
// that says so in X-Forwarded-Proto: a client forging it only makes its
// own cookie stricter).
func (a *API) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
		SameSite: http.SameSiteStrictMode,
	}
}

func (a *API) login(w http.ResponseWriter, r *http.Request, root string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		a.loginPage(w, r, root, http.StatusBadRequest, "The form could not be read.")
		return
	}
	tok := a.match(r.PostForm.Get("token"))
	if tok == nil {
		a.cfg.Logger.Info("queue UI login refused: unknown token", zap.String("remote_addr", r.RemoteAddr))
		a.loginPage(w, r, root, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	value, exp := a.newSession(tok)
	c := a.cookie(r, value, int(a.cfg.SessionTTL/time.Second))
	c.Expires = exp
	http.SetCookie(w, c)
	a.cfg.Logger.Info("queue UI login", zap.String("token", tok.Name), zap.String("scope", tok.Scope), zap.Time("expires", exp))
	http.Redirect(w, r, root+"/", http.StatusSeeOther)
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>opsworker {{.What}} · sign in</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 26rem; margin: 4rem auto; padding: 0 1rem; color: #222; }
label { display: block; margin-bottom: .3rem; }
input, button { font: inherit; padding: .45rem .6rem; }
input { width: 100%; box-sizing: border-box; }
.error { color: #b00020; }
</style>
</head>
<body>
<h1>opsworker {{.What}}</h1>
{{- if .Name}}
<p>Signed in with the token <b>{{.Name}}</b> ({{.Scope}}).</p>
<p><a href="{{.Root}}/">Open the {{.What}}</a></p>
<form method="post" action="{{.Root}}/logout"><button type="submit">Sign out</button></form>
{{- else}}
{{- if .Error}}
<p class="error" role="alert">{{.Error}}</p>
{{- end}}
<form method="post" action="{{.Root}}/login">
<label for="token">API token (from http.tokens)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<p><button type="submit">Sign in</button></p>
</form>
{{- end}}
</body>
</html>
`))

// loginPage renders the login form, or, for a valid session, who is
// signed in and a logout button.
func (a *API) loginPage(w http.ResponseWriter, r *http.Request, root string, status int, msg string) {
	data := struct{ Root, What, Name, Scope, Error string }{Root: root, What: "queue UI", Error: msg}
	if root == "/console" {
		data.What = "operations console"
	}
	if msg == "" {
		if t := a.fromSession(r); t != nil {
			data.Name, data.Scope = t.Name, t.Scope
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, data)
}
