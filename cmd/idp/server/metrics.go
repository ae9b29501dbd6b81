package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	signins  *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	logouts  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_http_requests_total", Help: "HTTP requests by endpoint, method and status.",
		}, []string{"endpoint", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "idp_http_request_duration_seconds", Help: "HTTP request latency by endpoint.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint"}),
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_signins_total", Help: "Sign-in attempts by method (pwd, sso, …) and result.",
		}, []string{"method", "result"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_tokens_issued_total", Help: "Access tokens issued by grant type.",
		}, []string{"grant"}),
		logouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_backchannel_logout_total", Help: "Back-channel logout attempts by result.",
		}, []string{"result"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.signins, m.tokens, m.logouts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) SignIn(method, result string) { m.signins.WithLabelValues(method, result).Inc() }
func (m *metrics) TokenIssued(grant string)     { m.tokens.WithLabelValues(grant).Inc() }
func (m *metrics) LogoutDelivery(result string) { m.logouts.WithLabelValues(result).Inc() }
