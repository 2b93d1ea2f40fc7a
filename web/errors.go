package web

import (
	"errors"
	"fmt"
	"net/http"
)

// httpError is an error that knows the HTTP status it should produce. Handlers return
// it for problems the client caused (404 unknown id, 400 bad parameter); anything else
// is a 500 whose message is logged but not shown, since it may hold internal detail.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to the status and the message the client may see.
func statusOf(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.msg
	}
	return http.StatusInternalServerError, "internal error"
}

// apiError is the JSON body of every /api error.
type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}
