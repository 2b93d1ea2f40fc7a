package web

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// contentSecurityPolicy allows only our own stylesheet and nothing else: no scripts,
// no inline styles, no frames, forms only to ourselves. Rule text is hostile input, and
// this is the second wall behind html/template's escaping.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status and size of a response for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Flush passes a flush through, so a handler can send its response before doing
// after-work (the page cache compresses after the reader has the page).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// requestLog writes the one line per request off the request path: a handler only
// queues the record, a goroutine formats and writes it. Under a burst the queue may
// fill; then lines are dropped and counted rather than making readers wait on stderr.
type requestLog struct {
	log     *slog.Logger
	ch      chan requestRecord
	dropped atomic.Int64
	done    chan struct{}
}

type requestRecord struct {
	method, path string
	status       int
	bytes        int
	dur          time.Duration
}

func newRequestLog(log *slog.Logger) *requestLog {
	l := &requestLog{log: log, ch: make(chan requestRecord, 8192), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *requestLog) run() {
	defer close(l.done)
	ctx := context.Background()
	for rec := range l.ch {
		if n := l.dropped.Swap(0); n > 0 {
			l.log.Warn("request log lines dropped under load", "lines", n)
		}
		l.log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", rec.method),
			slog.String("path", rec.path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Duration("duration", rec.dur),
		)
	}
}

func (l *requestLog) add(rec requestRecord) {
	select {
	case l.ch <- rec:
	default:
		l.dropped.Add(1)
	}
}

// close writes the queued lines and stops.
func (l *requestLog) close() {
	close(l.ch)
	<-l.done
}

// logRequests logs one line per request (through rl, asynchronously) and turns a
// handler panic into a 500, so one bad rule can never take the server down.
func logRequests(rl *requestLog, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				rl.log.Error("panic serving request", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					http.Error(sw, "internal error", http.StatusInternalServerError)
				}
			}
			rl.add(requestRecord{method: r.Method, path: r.URL.RequestURI(), status: sw.status, bytes: sw.bytes, dur: time.Since(start)})
		}()
		next.ServeHTTP(sw, r)
	})
}
