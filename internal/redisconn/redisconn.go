// Package redisconn turns a Redis URL into a client for the worker and the
// CLI. Four forms:
//
//	redis://[:password@]host:port[/db]                    one server
//	rediss://[:password@]host:port[/db]                   one server, TLS
//	redis-sentinel://[:password@]h1:26379,h2:26379[/db]?master=NAME
//	redis-cluster://[:password@]h1:7000,h2:7001,h3:7002   Redis Cluster
//
// asynq's keys and the operation store's keys carry hash tags, so both
// work on Cluster.
package redisconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Schemes lists the accepted URL schemes.
var Schemes = []string{"redis", "rediss", "redis-sentinel", "redis-cluster"}

// Conn is an opened connection's client and asynq connection options
// (for asynqmon), and a description without the password.
type Conn struct {
	Client redis.UniversalClient
	Opt    asynq.RedisConnOpt
	// Desc names the servers and mode, for logs.
	Desc string
}

// Parse builds the client for rawURL without connecting.
func Parse(rawURL string) (*Conn, error) {
	u, err := parseMultiHost(rawURL)
	if err != nil {
		return nil, err
	}
	password, _ := u.User.Password()
	switch u.Scheme {
	case "redis", "rediss":
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		aopt := asynq.RedisClientOpt{Addr: opt.Addr, Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig}
		return &Conn{Client: redis.NewClient(opt), Opt: aopt, Desc: fmt.Sprintf("%s db %d (tls %t)", opt.Addr, opt.DB, opt.TLSConfig != nil)}, nil
	case "redis-sentinel":
		addrs := hosts(u.Host, "26379")
		master := u.Query().Get("master")
		if len(addrs) == 0 || master == "" {
			return nil, errors.New("redis-sentinel:// needs sentinel hosts and ?master=NAME")
		}
		db, err := dbNumber(u.Path)
		if err != nil {
			return nil, err
		}
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: addrs, Password: password, DB: db})
		aopt := asynq.RedisFailoverClientOpt{MasterName: master, SentinelAddrs: addrs, Password: password, DB: db}
		return &Conn{Client: c, Opt: aopt, Desc: fmt.Sprintf("sentinel %s master %s db %d", strings.Join(addrs, ","), master, db)}, nil
	case "redis-cluster", "rediss-cluster":
		addrs := hosts(u.Host, "6379")
		if len(addrs) == 0 {
			return nil, errors.New("redis-cluster:// needs at least one node host:port")
		}
		var tc *tls.Config
		if u.Scheme == "rediss-cluster" {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Password: password, TLSConfig: tc})
		aopt := asynq.RedisClusterClientOpt{Addrs: addrs, Password: password, TLSConfig: tc}
		return &Conn{Client: c, Opt: aopt, Desc: "cluster " + strings.Join(addrs, ",")}, nil
	}
	return nil, fmt.Errorf("scheme %q: use one of %s", u.Scheme, strings.Join(Schemes, ", "))
}

// parseMultiHost parses a URL whose host part may list several
// host:port pairs, which url.Parse refuses.
func parseMultiHost(raw string) (*url.URL, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return nil, errors.New("not a URL (scheme://...)")
	}
	hostEnd := strings.IndexAny(rest, "/?")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	authority, tail := rest[:hostEnd], rest[hostEnd:]
	userinfo := ""
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i+1], authority[i+1:]
	}
	u, err := url.Parse(scheme + "://" + userinfo + "placeholder" + tail)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	u.Host = authority
	return u, nil
}

func hosts(h, defPort string) []string {
	var out []string
	for _, part := range strings.Split(h, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		if !strings.Contains(part, ":") {
			part += ":" + defPort
		}
		out = append(out, part)
	}
	return out
}

func dbNumber(path string) (int, error) {
	p := strings.Trim(path, "/")
	if p == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("database %q: must be a number", p)
	}
	return n, nil
}
