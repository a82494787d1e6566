package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func postJSON(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

type invalidFilterBody struct {
	Code        string `json:"code"`
	Description string `json:"description"`
	Errors      []struct {
		Line    int    `json:"line"`
		Column  int    `json:"column"`
		Message string `json:"message"`
	} `json:"errors"`
}

func TestValidateAndFormatFilter(t *testing.T) {
	h, _ := newServer(t, Config{AuthNone: true}, Deps{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	validate := srv.URL + "/api/v1/validate/filter"
	format := srv.URL + "/api/v1/filters/format"

	t.Run("valid is 200 OK", func(t *testing.T) {
		status, body := postJSON(t, validate, `{"expression":"vin_matches \"^WDD\" AND NOT has_package \"nav\" >= \"2.0.0\""}`)
		assert.Equal(t, http.StatusOK, status)
		assert.JSONEq(t, `"OK"`, string(body))
	})

	invalid := []struct {
		name, body  string
		description string
		line, col   int
		message     string
	}{
		{"trailing junk", `{"expression":"TRUE junk"}`,
			`Filter failed validation: 1:6: unexpected word "junk", expected AND, OR or end of input`,
			1, 6, `unexpected word "junk", expected AND, OR or end of input`},
		{"empty expression", `{"expression":""}`,
			`Filter failed validation: 1:1: empty expression, expected a predicate, NOT, TRUE, FALSE or "("`,
			1, 1, `empty expression, expected a predicate, NOT, TRUE, FALSE or "("`},
		{"missing expression", `{}`,
			`Filter failed validation: 1:1: empty expression, expected a predicate, NOT, TRUE, FALSE or "("`,
			1, 1, `empty expression, expected a predicate, NOT, TRUE, FALSE or "("`},
		{"invalid regex on line 2", `{"expression":"TRUE AND\n  has_component \"C??????\""}`,
			`Filter failed validation: 2:19: invalid regular expression "C??????": invalid nested repetition operator "????"`,
			2, 19, `invalid regular expression "C??????": invalid nested repetition operator "????"`},
		{"unknown reference without saved filters", `{"expression":"filter \"base\""}`,
			`Filter failed validation: 1:8: unknown filter "base", expected the name of a saved filter`,
			1, 8, `unknown filter "base", expected the name of a saved filter`},
		{"self reference through name", `{"expression":"TRUE OR filter \"Mine\"","name":"mine"}`,
			`Filter failed validation: 1:16: filter reference cycle: "mine" -> "mine"`,
			1, 16, `filter reference cycle: "mine" -> "mine"`},
	}
	for _, tc := range invalid {
		for _, url := range []string{validate, format} {
			t.Run(tc.name+strings.TrimPrefix(url, srv.URL), func(t *testing.T) {
				status, body := postJSON(t, url, tc.body)
				require.Equal(t, http.StatusNotAcceptable, status, string(body))
				var got invalidFilterBody
				require.NoError(t, json.Unmarshal(body, &got))
				assert.Equal(t, "invalid_filter", got.Code)
				assert.Equal(t, tc.description, got.Description)
				require.Len(t, got.Errors, 1)
				assert.Equal(t, tc.line, got.Errors[0].Line)
				assert.Equal(t, tc.col, got.Errors[0].Column)
				assert.Equal(t, tc.message, got.Errors[0].Message)
			})
		}
	}

	t.Run("several errors are listed", func(t *testing.T) {
		status, body := postJSON(t, validate, `{"expression":"vin_matches abc OR has_component \"(\" OR ?"}`)
		require.Equal(t, http.StatusNotAcceptable, status)
		var got invalidFilterBody
		require.NoError(t, json.Unmarshal(body, &got))
		require.Len(t, got.Errors, 3, string(body))
		assert.Equal(t, 13, got.Errors[0].Column)
		assert.Equal(t, 35, got.Errors[1].Column) // the regex is checked although the filter does not parse
		assert.Equal(t, `invalid regular expression "(": missing closing )`, got.Errors[1].Message)
		assert.Equal(t, 41, got.Errors[2].Column)
	})

	for _, url := range []string{validate, format} {
		t.Run("bad JSON is 400"+strings.TrimPrefix(url, srv.URL), func(t *testing.T) {
			for _, body := range []string{`{"expression":`, `{"expression":5}`, `["TRUE"]`} {
				status, b := postJSON(t, url, body)
				assert.Equal(t, http.StatusBadRequest, status, body)
				assert.Contains(t, string(b), `"code":"invalid_entity"`)
			}
		})
	}

	post := func(t *testing.T, url, contentType, body string) (int, []byte) {
		t.Helper()
		resp, err := http.Post(url, contentType, strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}

	t.Run("bare filter text as the body", func(t *testing.T) {
		// what curl --data-binary sends: application/x-www-form-urlencoded
		status, body := post(t, validate, "application/x-www-form-urlencoded", `vin_matches "^WDD"`)
		assert.Equal(t, http.StatusOK, status, string(body))
		assert.JSONEq(t, `"OK"`, string(body))

		status, body = post(t, validate, "text/plain", "vin_matches \"^WDD\" AND\n  has_component \"C??????\"\n")
		require.Equal(t, http.StatusNotAcceptable, status, string(body))
		var got invalidFilterBody
		require.NoError(t, json.Unmarshal(body, &got))
		assert.Equal(t, "invalid_filter", got.Code)
		require.Len(t, got.Errors, 1)
		assert.Equal(t, 2, got.Errors[0].Line)
		assert.Equal(t, 19, got.Errors[0].Column)

		status, body = post(t, format, "text/plain", `not(vin_matches'^WDD')`)
		assert.Equal(t, http.StatusOK, status, string(body))
		assert.JSONEq(t, `{"expression":"NOT vin_matches \"^WDD\""}`, string(body))

		// JSON without its content type is still JSON
		status, body = post(t, validate, "application/x-www-form-urlencoded", ` {"expression":"TRUE junk"}`)
		require.Equal(t, http.StatusNotAcceptable, status, string(body))
		assert.Contains(t, string(body), `unexpected word \"junk\"`)
		status, body = post(t, validate, "application/x-www-form-urlencoded", `{"expression":`)
		assert.Equal(t, http.StatusBadRequest, status, string(body))
		assert.Contains(t, string(body), `"code":"invalid_entity"`)
	})

	t.Run("format gives the canonical form", func(t *testing.T) {
		status, body := postJSON(t, format, `{"expression":"not(vin_matches'^WDD')and has_package\"nav\">=\"2.0.0\" // new nav\n or TRUE"}`)
		require.Equal(t, http.StatusOK, status, string(body))
		assert.JSONEq(t, `{"expression":"NOT vin_matches \"^WDD\" AND has_package \"nav\" >= \"2.0.0\" OR TRUE"}`, string(body))
	})
}

func TestValidateFilterBodyLimit(t *testing.T) {
	h, _ := newServer(t, Config{AuthNone: true, MaxBody: 1 << 10}, Deps{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	big := strings.Repeat("TRUE AND ", 200) + "TRUE"
	for _, ct := range []string{"text/plain", "application/json"} {
		body := big
		if ct == "application/json" {
			body = `{"expression":"` + big + `"}`
		}
		resp, err := http.Post(srv.URL+"/api/v1/validate/filter", ct, strings.NewReader(body))
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, ct)
		assert.Contains(t, string(b), `"code":"body_too_large"`, ct)
	}
}
