// Package redisconn turns a Redis URL into a client for the worker and the
// CLI. Four forms:
//
//	redis://[[user]:password@]host:port[/db][?option=value...]  one server
//	rediss://[[user]:password@]host:port[/db]               one server, TLS
//	redis-sentinel://[:password@]h1:26379,h2:26379[/db]?master=NAME
//	redis-cluster://[:password@]h1:7000,h2:7001,h3:7002     Redis Cluster
//	                                                        (rediss-cluster:// with TLS)
//
// A '/', '?', '#' or '@' in the user name or password must be
// percent-encoded. The options of redis:// and rediss:// are go-redis's
// (https://pkg.go.dev/github.com/redis/go-redis/v9#ParseURL).
//
// Errors say which part of the URL is wrong and never contain the URL or
// any part of it, so they may be logged: a password that breaks the URL
// syntax would otherwise end up in the host, path or query they quote.
//
// asynq's keys and the operation store's keys carry hash tags, so both
// work on Cluster.
package redisconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Schemes lists the accepted URL schemes.
var Schemes = []string{"redis", "rediss", "redis-sentinel", "redis-cluster", "rediss-cluster"}

// Conn is an opened connection's client and asynq connection options
// (for asynqmon), and a description without the password.
type Conn struct {
	Client redis.UniversalClient
	Opt    asynq.RedisConnOpt
	// Desc names the servers and mode, for logs. It holds neither the user
	// name nor the password.
	Desc string
}

// target is a checked URL, before any client exists.
type target struct {
	scheme   string
	password string
	addrs    []string
	db       int
	query    url.Values
	// opt is go-redis's reading of a redis:// or rediss:// URL.
	opt *redis.Options
}

// Check reports what is wrong with rawURL, as Parse would, without
// making a client.
func Check(rawURL string) error {
	_, err := parse(rawURL)
	return err
}

// Parse builds the client for rawURL without connecting.
func Parse(rawURL string) (*Conn, error) {
	t, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch t.scheme {
	case "redis", "rediss":
		opt := t.opt
		aopt := asynq.RedisClientOpt{Addr: opt.Addr, Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig}
		return &Conn{Client: redis.NewClient(opt), Opt: aopt, Desc: fmt.Sprintf("%s db %d (tls %t)", opt.Addr, opt.DB, opt.TLSConfig != nil)}, nil
	case "redis-sentinel":
		master := t.query.Get("master")
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: t.addrs, Password: t.password, DB: t.db})
		aopt := asynq.RedisFailoverClientOpt{MasterName: master, SentinelAddrs: t.addrs, Password: t.password, DB: t.db}
		return &Conn{Client: c, Opt: aopt, Desc: fmt.Sprintf("sentinel %s master %s db %d", strings.Join(t.addrs, ","), master, t.db)}, nil
	default: // redis-cluster, rediss-cluster
		var tc *tls.Config
		if t.scheme == "rediss-cluster" {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: t.addrs, Password: t.password, TLSConfig: tc})
		aopt := asynq.RedisClusterClientOpt{Addrs: t.addrs, Password: t.password, TLSConfig: tc}
		return &Conn{Client: c, Opt: aopt, Desc: "cluster " + strings.Join(t.addrs, ",")}, nil
	}
}

// parse checks every part of rawURL. It splits the URL itself because
// the host part may list several host:port pairs, which url.Parse
// refuses, and because url.Parse's errors quote the whole URL.
func parse(raw string) (*target, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return nil, errors.New("not a URL: want scheme://[:password@]host:port[/db]")
	}
	if !slices.Contains(Schemes, scheme) {
		return nil, fmt.Errorf("scheme: use one of %s", strings.Join(Schemes, ", "))
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	authority, tail := rest[:hostEnd], rest[hostEnd:]
	if strings.Contains(tail, "@") {
		return nil, errors.New("a '/', '?' or '#' in the user name or password must be percent-encoded (%2F, %3F, %23)")
	}
	if strings.Contains(tail, "#") {
		return nil, errors.New("a URL fragment ('#') is not allowed")
	}
	t := &target{scheme: scheme}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		u, err := url.Parse("redis://" + authority[:i+1] + "placeholder")
		if err != nil || u.User == nil {
			return nil, errors.New("user name or password: invalid percent-encoding or character (percent-encode it)")
		}
		t.password, _ = u.User.Password()
		authority = authority[i+1:]
	}
	rest2, err := url.Parse("redis://placeholder" + tail)
	if err != nil {
		return nil, errors.New("path or query: invalid percent-encoding or character")
	}
	t.query = rest2.Query()
	if p := strings.Trim(rest2.Path, "/"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, errors.New("database (the path) must be a number")
		}
		t.db = n
	}

	defPort := "6379"
	if scheme == "redis-sentinel" {
		defPort = "26379"
	}
	for i, part := range strings.Split(authority, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		addr, err := hostPort(part, defPort)
		if err != nil {
			return nil, fmt.Errorf("host %d: %w", i+1, err)
		}
		t.addrs = append(t.addrs, addr)
	}
	if len(t.addrs) == 0 {
		return nil, errors.New("needs a host (host:port)")
	}

	switch scheme {
	case "redis", "rediss":
		if len(t.addrs) > 1 {
			return nil, fmt.Errorf("%s:// takes one host; use redis-sentinel:// or redis-cluster:// for several", scheme)
		}
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, queryError(err)
		}
		t.opt = opt
	case "redis-sentinel":
		if t.query.Get("master") == "" {
			return nil, errors.New("redis-sentinel:// needs ?master=NAME")
		}
	default:
		if t.db != 0 {
			return nil, fmt.Errorf("%s:// has no database number: Redis Cluster has database 0 only", scheme)
		}
	}
	return t, nil
}

// hostPort checks one host[:port] and adds the default port.
func hostPort(part, defPort string) (string, error) {
	if !strings.Contains(part, ":") || (strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]")) {
		part += ":" + defPort
	}
	host, port, err := net.SplitHostPort(part)
	if err != nil {
		return "", errors.New("not host:port")
	}
	if host == "" {
		return "", errors.New("missing host name")
	}
	if strings.ContainsFunc(host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:%", r))
	}) {
		return "", errors.New("invalid host name")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("port must be a number from 1 to 65535")
	}
	return net.JoinHostPort(host, port), nil
}

var badOption = regexp.MustCompile(`^redis: invalid ([a-z_]+) (number|duration|boolean)`)

// queryError restates a go-redis ParseURL error (by now only its query
// options can be wrong) without the option values it quotes.
func queryError(err error) error {
	msg := err.Error()
	switch m := badOption.FindStringSubmatch(msg); {
	case m != nil:
		return fmt.Errorf("query: option %s must be a %s", m[1], m[2])
	case strings.HasPrefix(msg, "redis: invalid database number"):
		return errors.New("query: option db must be a number")
	case strings.HasPrefix(msg, "redis: unexpected option"):
		return errors.New("query: unknown option (see https://pkg.go.dev/github.com/redis/go-redis/v9#ParseURL for the options)")
	}
	return errors.New("query: invalid option")
}
