package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// cliConfig is the CLI's contexts file, like other infra CLIs':
//
//	current-context: prod
//	contexts:
//	  prod:
//	    api: https://opsworker.internal:8080
//	    token_env: OPSWORKER_PROD_TOKEN   # or token_file: ~/.config/opsworker/prod.token
//	  local:
//	    redis: redis://127.0.0.1:16379/0
type cliConfig struct {
	CurrentContext string                 `yaml:"current-context,omitempty"`
	Contexts       map[string]*cliContext `yaml:"contexts,omitempty"`
}

type cliContext struct {
	API string `yaml:"api,omitempty"`
	// TokenEnv names the environment variable that holds the token.
	TokenEnv string `yaml:"token_env,omitempty"`
	// TokenFile is a file that holds the token.
	TokenFile string `yaml:"token_file,omitempty"`
	// Token is the token itself: refused unless the file is 0600.
	Token string `yaml:"token,omitempty"`
	Redis string `yaml:"redis,omitempty"`
}

// cliConfigPath is $XDG_CONFIG_HOME/opsworker/cli.yaml, by default
// ~/.config/opsworker/cli.yaml.
func cliConfigPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "opsworker", "cli.yaml")
}

// loadCLIConfig reads the contexts file; a missing one is empty.
func loadCLIConfig() (*cliConfig, string, error) {
	path := cliConfigPath()
	cfg := &cliConfig{}
	if path == "" {
		return cfg, path, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return nil, path, fail(exitBadInput, "%s: %v", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, path, fail(exitBadInput, "%s: %v", path, err)
	}
	for name, c := range cfg.Contexts {
		if c == nil {
			cfg.Contexts[name] = &cliContext{}
			continue
		}
		if n := btoi(c.TokenEnv != "") + btoi(c.TokenFile != "") + btoi(c.Token != ""); n > 1 {
			return nil, path, fail(exitBadInput, "%s: context %q: give one of token_env, token_file and token", path, name)
		}
	}
	return cfg, path, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pick returns the context in use: --context, else OPSWORKER_CONTEXT, else
// current-context (nil: none).
func (c *cliConfig) pick(flag, path string) (string, *cliContext, error) {
	name, from := flag, "--context"
	if name == "" {
		name, from = os.Getenv("OPSWORKER_CONTEXT"), "OPSWORKER_CONTEXT"
	}
	if name == "" {
		name, from = c.CurrentContext, "current-context in "+path
	}
	if name == "" {
		return "", nil, nil
	}
	ctx, ok := c.Contexts[name]
	if !ok {
		return "", nil, fail(exitBadInput, "%s: no context %q in %s (contexts: %s)", from, name, path, c.names())
	}
	return name, ctx, nil
}

func (c *cliConfig) names() string {
	if len(c.Contexts) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(c.Contexts)), ", ")
}

// privateFile says why path is not private to its owner (mode 0600).
func privateFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("the file is mode %04o, readable by others: chmod 600 %s (or use token_env or token_file)", perm, path)
	}
	return nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// save writes the contexts file, mode 0600, through a file renamed into
// place.
func (c *cliConfig) save(path string) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".cli.yaml.*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Contexts: which API (and token) or Redis the CLI uses, kept in $XDG_CONFIG_HOME/opsworker/cli.yaml",
		Long: `Contexts name the API (with where its token is) or the Redis the CLI uses,
like other infra CLIs' contexts. The file is ` + "`$XDG_CONFIG_HOME/opsworker/cli.yaml`" + `
(default ~/.config/opsworker/cli.yaml), written mode 0600:

  current-context: prod
  contexts:
    prod:
      api: https://opsworker.internal:8080
      token_env: OPSWORKER_PROD_TOKEN     # or token_file: ~/.config/opsworker/prod.token
    local:
      redis: redis://127.0.0.1:16379/0

A token stored in the file itself (token:) is refused unless the file is
mode 0600. Flags win over the environment, which wins over the context:
--api, OPSWORKER_API_URL, api; --redis, OPSWORKER_REDIS_URL, redis;
OPSWORKER_TOKEN, then the context's token. --context or OPSWORKER_CONTEXT
picks a context for one command.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "use-context <name>",
		Short: "Make a context the current one",
		Args:  cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			cfg, _, err := loadCLIConfig()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return slices.Sorted(maps.Keys(cfg.Contexts)), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadCLIConfig()
			if err != nil {
				return err
			}
			if path == "" {
				return fail(exitBadInput, "no home directory for the contexts file: set XDG_CONFIG_HOME")
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return fail(exitBadInput, "no context %q in %s (contexts: %s)", args[0], path, cfg.names())
			}
			cfg.CurrentContext = args[0]
			if err := cfg.save(path); err != nil {
				return fail(exitBadInput, "%s: %v", path, err)
			}
			fmt.Fprintf(g.stdout, "current context: %s\n", args[0])
			return nil
		},
	}, &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts (tokens are never shown, only where they come from)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := loadCLIConfig()
			if err != nil {
				return err
			}
			type row struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				API     string `json:"api,omitempty"`
				Token   string `json:"token,omitempty"`
				Redis   string `json:"redis,omitempty"`
			}
			rows := []row{}
			for _, name := range slices.Sorted(maps.Keys(cfg.Contexts)) {
				c := cfg.Contexts[name]
				r := row{Name: name, Current: name == cfg.CurrentContext, API: c.API}
				if c.Redis != "" {
					r.Redis = safeURL(c.Redis)
				}
				switch {
				case c.TokenEnv != "":
					r.Token = "$" + c.TokenEnv
				case c.TokenFile != "":
					r.Token = "file " + c.TokenFile
				case c.Token != "":
					r.Token = "(in the file)"
				}
				rows = append(rows, r)
			}
			if g.jsonOut() {
				return g.printList(rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CURRENT\tNAME\tAPI\tTOKEN\tREDIS")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", map[bool]string{true: "*"}[r.Current], r.Name, r.API, r.Token, r.Redis)
			}
			return tw.Flush()
		},
	})
	return cmd
}
