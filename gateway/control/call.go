package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// maxRequest bounds a call's JSON body.
const maxRequest = 1 << 20

// Handle registers on mux the call name, a POST of a JSON In answered
// with a JSON Out; an error of fn answers 422 with its message, a body
// that is not an In 400.
func Handle[In, Out any](mux *http.ServeMux, name string, fn func(context.Context, In) (Out, error)) {
	mux.HandleFunc("POST "+callPath(name), func(w http.ResponseWriter, r *http.Request) {
		var in In
		if err := json.NewDecoder(io.LimitReader(r.Body, maxRequest)).Decode(&in); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		out, err := fn(r.Context(), in)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// callPath is the URL path of a call.
func callPath(name string) string { return "/v1/" + name }

// failure is the body of an answer that is not 200.
type failure struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, failure{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
