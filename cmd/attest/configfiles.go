package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// configEnv is where the commands that decide find their configuration when --config is not given: the working
// directory (the project's .attest/ there or above) and the user's configuration directory. It comes from the
// app; runApp hands it to the commands through their context.
type configEnv struct {
	workDir func() (string, error)
	homeDir func() (string, error)
	getenv  func(string) string
	stderr  io.Writer
}

type configEnvKey struct{}

// withConfigEnv gives the commands run under ctx the app's surroundings for finding configuration files.
func withConfigEnv(ctx context.Context, a app) context.Context {
	return context.WithValue(ctx, configEnvKey{}, configEnv{workDir: a.workDir, homeDir: a.homeDir, getenv: a.getenv, stderr: a.stderr})
}

func configEnvFrom(ctx context.Context) configEnv {
	env, _ := ctx.Value(configEnvKey{}).(configEnv)
	return env
}

// home is the user's home directory, empty when it cannot be told.
func (env configEnv) home() string {
	if env.homeDir == nil {
		return ""
	}
	h, err := env.homeDir()
	if err != nil {
		return ""
	}
	return h
}

// configHome is $XDG_CONFIG_HOME when set (and absolute, as the XDG specification asks), else ~/.config.
func (env configEnv) configHome() string {
	if env.getenv != nil {
		if x := env.getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
			return x
		}
	}
	if h := env.home(); h != "" {
		return filepath.Join(h, ".config")
	}
	return ""
}

// find lists the configuration files that apply, most general first (see config.FindFiles).
func (env configEnv) find() ([]string, error) {
	dir := ""
	if env.workDir != nil {
		wd, err := env.workDir()
		if err != nil {
			return nil, fmt.Errorf("find the configuration: %w", err)
		}
		dir = wd
	}
	return config.FindFiles(dir, env.configHome())
}

// loadConfig reads --config when given; otherwise the project's .attest/policies.yaml and .attest/governance.yaml
// (here or above) over the global ~/.config/attest/policies.yaml, or every policy's defaults when there are none.
// What the configuration asks for and ATTEST does not do is written to stderr as warnings.
func loadConfig(ctx context.Context, path string, engine *policies.Engine) (*config.Config, error) {
	env := configEnvFrom(ctx)
	var cfg *config.Config
	var err error
	if path != "" {
		cfg, err = config.Load(path, engine)
	} else {
		files, ferr := env.find()
		if ferr != nil {
			return nil, ferr
		}
		if len(files) == 0 {
			return config.Default(engine), nil
		}
		cfg, err = config.LoadFiles(files, engine, config.Options{})
	}
	if err != nil {
		return nil, configHere(err)
	}
	if env.stderr != nil {
		for _, w := range cfg.Warnings {
			fmt.Fprintln(env.stderr, "warning:", w)
		}
	}
	return cfg, nil
}

// reportConfigFiles writes which files the configuration came from, the one that wins first:
// `config: /src/shop/.attest/policies.yaml, /src/shop/.attest/governance.yaml, ~/.config/attest/policies.yaml`.
func reportConfigFiles(ctx context.Context, w io.Writer, cfg *config.Config) {
	env := configEnvFrom(ctx)
	if len(cfg.Files) == 0 {
		fmt.Fprintln(w, "config: none found (no .attest/policies.yaml or .attest/governance.yaml here or above, no ~/.config/attest/policies.yaml): every policy as the library ships it")
		return
	}
	global := ""
	if ch := env.configHome(); ch != "" {
		global = filepath.Join(ch, "attest", config.PoliciesFile)
	}
	var project, rest []string
	for _, f := range cfg.Files {
		if f == global {
			rest = append(rest, tildeHome(env.home(), f))
		} else {
			project = append(project, f)
		}
	}
	fmt.Fprintln(w, "config:", strings.Join(append(project, rest...), ", "))
	for _, src := range cfg.PolicySources {
		fmt.Fprintf(w, "note: policy source %s (%s) is loaded by `attest serve`, not by this command; check it with `attest policy validate-bundle --config FILE %s`\n", src.Name, src.OCI, src.OCI)
	}
}

// tildeHome writes a path under home as ~/…, as people write the global file.
func tildeHome(home, p string) string {
	if home == "" {
		return p
	}
	if rel, err := filepath.Rel(home, p); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
		return "~" + string(filepath.Separator) + rel
	}
	return p
}
