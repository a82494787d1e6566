package api

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every registered route must be described in openapi.yaml, and every described path must exist.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(OpenAPI(), &doc))
	engine, _ := newServer(t, Config{AuthNone: true}, withSigning(t, fullDeps(t)).Deps)
	registered := map[string]bool{}
	for _, r := range engine.Routes() {
		p := ginToOpenAPI(r.Path)
		registered[strings.ToLower(r.Method)+" "+p] = true
		ops, ok := doc.Paths[p]
		if !assert.Truef(t, ok, "route %s %s is missing from openapi.yaml", r.Method, p) {
			continue
		}
		_, ok = ops[strings.ToLower(r.Method)]
		assert.Truef(t, ok, "method %s of %s is missing from openapi.yaml", r.Method, p)
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" || m == "summary" || m == "description" {
				continue
			}
			assert.Truef(t, registered[m+" "+p], "openapi.yaml describes %s %s but no such route is registered", m, p)
		}
	}
}

func ginToOpenAPI(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}
